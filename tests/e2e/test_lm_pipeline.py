"""The language-model half of the DAG end to end on a tiny local teacher: corpus → teacher → caches →
SAEs → KD metrics → figures → hub folder, in one Snakemake run (the stages' own tests use a synthetic
source; this one checks that they connect)."""
import json

import pandas as pd
import pytest

from conftest import make_workdir, run_snakemake
from rules.test_lm_rules import TINY_CACHE, TINY_MODEL

TINY_SAE = {"trials": {"B": {"l1_form": "sum", "l1_coefficient": 1.0e-3, "adaptive": None}},
            "expansion": 2, "batch_size": 256, "training_tokens": 2560, "snapshots": [1280], "log_every": 2,
            "alive_window_tokens": 1024, "b_pre_init_tokens": 512}


@pytest.mark.slow
def test_teacher_to_published_sae(tmp_path):
    workdir = make_workdir(tmp_path, {"stages": ["lm", "sae", "kd", "publish"], "model": TINY_MODEL,
                                      "cache": TINY_CACHE, "sae": TINY_SAE,
                                      "kd": {"batch_size": 256, "figures": {"B": ["premium_heatmap"]}}})
    run_snakemake(workdir, "all")
    metrics = pd.read_csv(workdir / "results/kd/B/metrics.csv")
    assert len(metrics) == 2 * 2 * 2, "2 checkpoints × 2 layers × 2 snapshots"
    assert set(metrics["ckpt"]) == {"step4", "final"} and set(metrics["snapshot"]) == {"1280", "final"}
    assert (metrics["n_latents"] == 64).all() and metrics["mse"].notna().all()
    assert (workdir / "results/figures/sae/B/premium_heatmap.png").stat().st_size > 10_000
    assert (workdir / "results/figures/sae/compare_trials.png").is_file()
    hub = workdir / "results/publish/B/hub"
    assert {p.name for p in hub.glob("*.pt")} == {"sae_layer00_1280.pt", "sae_layer00_final.pt",
                                                  "sae_layer01_1280.pt", "sae_layer01_final.pt"}
    assert "base_model: tiny-neox" in (hub / "README.md").read_text()
    assert json.loads((workdir / "results/publish/B/status.json").read_text())["uploaded"] is False
