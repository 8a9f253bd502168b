import pandas as pd
import torch

from interplab import publish


def _card(layers=(0, 1)):
    metrics = pd.DataFrame({"layer": list(layers), "l0": [12.5, 20.0], "alpha": [0.95, 0.92], "dstar": [10.1, 14.2],
                            "mse": [0.01, 0.02], "dead": [3, 7]})
    return publish.TrialCard(trial="B", base_model="EleutherAI/pythia-410m", revision="step143000",
                             hook="blocks.{L}.hook_resid_post", layers=list(layers), d_in=8, d_sae=32,
                             l1_policy="fixed λ = 8e-5 (sum form)", training_tokens=300_000_000,
                             snapshots=["50M", "final"], metrics=metrics)


def _inputs(tmp_path):
    snapshot_dirs, pt_files = {}, {}
    for layer in (0, 1):
        for snapshot in ("50M", "final"):
            folder = tmp_path / "sae" / f"L{layer:02d}" / snapshot
            folder.mkdir(parents=True)
            (folder / "cfg.json").write_text("{}")
            (folder / "sae_weights.safetensors").write_bytes(b"weights")
            pt = tmp_path / "sae" / f"sae_layer{layer:02d}_{snapshot}.pt"
            torch.save({"W_dec": torch.zeros(2)}, pt)
            snapshot_dirs[(layer, snapshot)], pt_files[(layer, snapshot)] = folder, pt
    return snapshot_dirs, pt_files


def test_assembled_folder_layout_and_card(tmp_path):
    dirs, pts = _inputs(tmp_path)
    out = publish.assemble(_card(), dirs, pts, pd.DataFrame({"layer": [0]}), tmp_path / "pub", repo_id="me/sae-b")
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert "sae_layer01_final.pt" in names and "sae_layer00_50M.pt" in names
    assert "saelens/layer_01/final/sae_weights.safetensors" in names
    assert {"README.md", "metrics.csv"} <= set(names)
    card = (out / "README.md").read_text()
    for fact in ["base_model: EleutherAI/pythia-410m", "step143000", "8 → 32", "300,000,000", "50M, final",
                 "fixed λ = 8e-5", "| 1 | 20.0 | 0.9200 | 14.2 | 0.02 | 7 |", 'hf_hub_download("me/sae-b"',
                 "sae_layer00_final.pt", "SAE.load_from_disk"]:
        assert fact in card, fact
    assert torch.load(out / "sae_layer00_final.pt", weights_only=True)["W_dec"].shape == (2,)


def test_reassembling_replaces_files(tmp_path):
    dirs, pts = _inputs(tmp_path)
    publish.assemble(_card(), dirs, pts, pd.DataFrame(), tmp_path / "pub")
    publish.assemble(_card(), dirs, pts, pd.DataFrame(), tmp_path / "pub")  # no FileExistsError
    assert "<user>/<repo>" in (tmp_path / "pub/README.md").read_text()


def test_upload_without_repo_or_token_stops_and_says_why(tmp_path):
    status = publish.upload(tmp_path, repo_id="me/x", token=None)
    assert not status["uploaded"] and "a token missing" in status["reason"]
    status = publish.upload(tmp_path, repo_id=None, token=None)
    assert "a repo id and a token missing" in status["reason"]


class StubApi:
    """Stands in for huggingface_hub.HfApi: the hub itself cannot exist here."""

    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", repo_id, kw))

    def upload_folder(self, **kw):
        self.calls.append(("upload_folder", kw["repo_id"], kw))
        return type("Commit", (), {"commit_url": "https://hub/commit/1"})()


def test_upload_calls_hub(tmp_path):
    api = StubApi()
    status = publish.upload(tmp_path, "me/sae-b", "hf_token", api=api)
    assert status == {"uploaded": True, "folder": str(tmp_path), "repo_id": "me/sae-b", "commit": "https://hub/commit/1"}
    assert [c[0] for c in api.calls] == ["create_repo", "upload_folder"]
    assert api.calls[1][2]["folder_path"] == str(tmp_path)
    assert ".*" in api.calls[1][2]["ignore_patterns"], "hidden files (Snakemake's timestamp) stay local"
