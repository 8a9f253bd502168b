import pandas as pd
import torch
import yaml
from huggingface_hub import ModelCard

from interplab import publish

HUB = {"model_name": "EleutherAI/pythia-410m", "base_model": "EleutherAI/pythia-410m",
       "dataset": "monology/pile-uncopyrighted"}
LOCAL = {"model_name": "stdlib-neox", "base_model": None, "dataset": None}


def _card(layers=(0, 1), model=HUB):
    metrics = pd.DataFrame({"layer": list(layers), "l0": [12.5, 20.0], "alpha": [0.95, 0.92], "dstar": [10.1, 14.2],
                            "mse": [0.01, 0.02], "fvu": [0.25, 0.1], "dead": [3, 7]})
    return publish.TrialCard(trial="B", **model, revision="step143000",
                             hook="blocks.{L}.hook_resid_post", layers=list(layers), d_in=8, d_sae=32,
                             l1_policy="fixed λ = 8e-5 (sum form)", training_tokens=300_000_000,
                             snapshots=["50M", "final"], metrics=metrics)


def _table():
    """The kd table: both snapshots of both layers at the card's revision, and one older revision."""
    rows = [{"ckpt": ckpt, "layer": layer, "snapshot": snapshot, "l0": 10.0 * (layer + 1), "fvu": 0.2}
            for ckpt in ("step1000", "step143000") for layer in (0, 1) for snapshot in ("50M", "final")]
    return pd.DataFrame(rows)


def _inputs(tmp_path):
    files = {}
    for layer in (0, 1):
        for snapshot in ("50M", "final"):
            folder = tmp_path / "sae" / f"L{layer:02d}" / snapshot
            folder.mkdir(parents=True)
            (folder / "cfg.json").write_text("{}")
            (folder / "sae_weights.safetensors").write_bytes(b"weights")
            pt = tmp_path / "sae" / f"sae_layer{layer:02d}_{snapshot}.pt"
            torch.save({"W_dec": torch.zeros(2)}, pt)
            sparsity = tmp_path / "kd" / f"L{layer:02d}" / f"{snapshot}.sparsity.safetensors"
            sparsity.parent.mkdir(parents=True, exist_ok=True)
            sparsity.write_bytes(b"sparsity")
            files[(layer, snapshot)] = publish.SnapshotFiles(folder, pt, sparsity)
    return files


def test_assembled_folder_layout_and_card(tmp_path):
    out = publish.assemble(_card(), _inputs(tmp_path), _table(), tmp_path / "pub", repo_id="me/sae-b")
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert "sae_layer01_final.pt" in names and "sae_layer00_50M.pt" in names
    assert {"saelens/layer_01/final/sae_weights.safetensors", "saelens/layer_01/final/sparsity.safetensors"} <= set(names)
    assert {"README.md", "metrics.csv", "pretrained_saes.yaml"} <= set(names)
    text = (out / "README.md").read_text()
    for fact in ["step143000", "8 → 32", "300,000,000", "50M, final", "fixed λ = 8e-5",
                 "| 1 | 20.0 | 0.9000 | 0.9200 | 14.2 | 0.02 | 7 |",
                 'SAE.from_pretrained("me/sae-b", "saelens/layer_00/final")', 'hf_hub_download("me/sae-b"',
                 "sae_layer00_final.pt"]:
        assert fact in text, fact
    card = ModelCard(text).data
    assert (card.license, card.library_name, card.base_model) == ("mit", "saelens", "EleutherAI/pythia-410m")
    assert card.datasets == ["monology/pile-uncopyrighted"]
    assert card.sae_metrics["blocks.1.hook_resid_post/final"] == {"l0": 20.0, "variance_explained": 0.9, "alpha": 0.92,
                                                                  "dstar": 14.2, "mse": 0.02, "dead": 7}
    assert torch.load(out / "sae_layer00_final.pt", weights_only=True)["W_dec"].shape == (2,)


def test_index_lists_every_snapshot_in_saelens_registry_format(tmp_path):
    out = publish.assemble(_card(), _inputs(tmp_path), _table(), tmp_path / "pub", repo_id="me/sae-b")
    index = yaml.safe_load((out / "pretrained_saes.yaml").read_text())
    assert list(index) == ["pythia-410m-interplab-B"]
    release = index["pythia-410m-interplab-B"]
    assert (release["repo_id"], release["model"], release["conversion_func"]) == ("me/sae-b", "EleutherAI/pythia-410m", None)
    assert release["links"] == {"model": "https://huggingface.co/EleutherAI/pythia-410m"}
    assert [s["id"] for s in release["saes"]] == ["blocks.0.hook_resid_post/50M", "blocks.0.hook_resid_post/final",
                                                  "blocks.1.hook_resid_post/50M", "blocks.1.hook_resid_post/final"]
    assert release["saes"][3] == {"id": "blocks.1.hook_resid_post/final", "path": "saelens/layer_01/final",
                                  "l0": 20.0, "variance_explained": 0.8}
    assert all((out / s["path"] / "cfg.json").is_file() for s in release["saes"])


def test_local_model_is_not_claimed_as_a_hub_base_model(tmp_path):
    out = publish.assemble(_card(model=LOCAL), _inputs(tmp_path), _table(), tmp_path / "pub")
    text = (out / "README.md").read_text()
    card = ModelCard(text).data
    assert card.base_model is None and card.datasets is None and card.license == "mit"
    assert "base_model" not in text.split("---")[1] and "trained locally" in text
    release = yaml.safe_load((out / "pretrained_saes.yaml").read_text())["stdlib-neox-interplab-B"]
    assert "links" not in release and release["model"] == "stdlib-neox"


def test_reassembling_replaces_files(tmp_path):
    files = _inputs(tmp_path)
    publish.assemble(_card(), files, pd.DataFrame(), tmp_path / "pub")
    publish.assemble(_card(), files, pd.DataFrame(), tmp_path / "pub")  # no FileExistsError
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
