"""KD measurement, tables, SAE figures and the hub folder through real Snakemake on the synthetic source."""
import json

import pandas as pd
import pytest

from conftest import make_workdir, run_snakemake

TINY = {
    "stages": ["kd", "publish"],
    "model": {"source": "synthetic", "name": "synth"},
    "cache": {"train_tokens": 8192, "heldout_tokens": 2048, "shard_tokens": 4096, "dtype": "float32"},
    "synthetic": {"d_model": 16, "n_features": 32, "alpha": 0.9, "noise_std": 0.0, "seed": 0},
    "sae": {"trials": {"A": {"l1_form": "mean", "l1_coefficient": 3.0e-4, "adaptive": None},
                       "B": {"l1_form": "sum", "l1_coefficient": 8.0e-3, "adaptive": None}},
            "expansion": 4, "batch_size": 256, "training_tokens": 12800, "snapshots": [5000],
            "log_every": 5, "alive_window_tokens": 2048},
    "kd": {"batch_size": 512, "figures": {"A": ["premium_heatmap", "metric_vs_tokens"], "B": ["predicted_floor"]}},
}


@pytest.fixture(scope="module")
def kd_workdir(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("kd"), TINY)
    run_snakemake(workdir, "all")
    return workdir


def test_snapshot_records_and_ground_truth(kd_workdir):
    rec = json.loads((kd_workdir / "results/kd/B/synth/final/L00/final.json").read_text())
    assert rec["snapshot"] == "final" and rec["tokens"] == 12800 and rec["layer"] == 0
    assert rec["n_latents"] == 64 and rec["f_alive"] + rec["dead"] == 64
    assert 0 < rec["alpha"] < 1 and rec["dstar"] == pytest.approx(rec["f_alive"] / rec["g_alpha"])
    assert (rec["true_f"], rec["true_alpha"]) == (32, 0.9)
    assert rec["spectrum"] == sorted(rec["spectrum"], reverse=True) and len(rec["spectrum"]) == rec["f_alive"]
    assert rec["provenance"]["inputs"]["sae"]["sha256"]


def test_trial_tables(kd_workdir):
    metrics = pd.read_csv(kd_workdir / "results/kd/A/metrics.csv")
    assert list(metrics.columns[:6]) == ["trial", "model", "ckpt", "layer", "snapshot", "tokens"]
    assert list(metrics["snapshot"]) == ["5k", "final"] and list(metrics["tokens"]) == [5120, 12800]
    floors = pd.read_csv(kd_workdir / "results/kd/A/floors.csv")
    assert floors.groupby("snapshot")["floor_refined"].apply(lambda f: f.is_monotonic_decreasing).all()


@pytest.mark.parametrize("path", ["A/premium_heatmap", "A/metric_vs_tokens", "B/predicted_floor", "compare_trials"])
def test_figures_nonempty(kd_workdir, path):
    data = (kd_workdir / f"results/figures/sae/{path}.png").read_bytes()
    assert data[:4] == b"\x89PNG" and len(data) > 10_000
    assert not (kd_workdir / "results/figures/sae/B/premium_heatmap.png").exists(), "figures follow kd.figures"


def test_publish_folder_assembled_but_not_uploaded(kd_workdir):
    hub = kd_workdir / "results/publish/B/hub"
    names = sorted(str(p.relative_to(hub)) for p in hub.rglob("*") if p.is_file() and not p.name.startswith("."))
    assert names == ["README.md", "metrics.csv", "sae_layer00_5k.pt", "sae_layer00_final.pt",
                     "saelens/layer_00/5k/cfg.json", "saelens/layer_00/5k/sae_weights.safetensors",
                     "saelens/layer_00/final/cfg.json", "saelens/layer_00/final/sae_weights.safetensors"]
    card = (hub / "README.md").read_text()
    assert "base_model: synth" in card and "fixed λ = 0.008 (sum form)" in card and "16 → 64" in card
    status = json.loads((kd_workdir / "results/publish/B/status.json").read_text())
    assert status["uploaded"] is False and "repo id" in status["reason"]
