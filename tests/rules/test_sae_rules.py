"""Run the sae stage through real Snakemake on the synthetic source (cache → SAE → recovery)."""
import json

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from conftest import assert_figure_drawn_from_current_tables, make_workdir, planned_jobs, run_snakemake
from interplab.io import read_provenance
from interplab.sae import load_sae
from interplab.synthetic import load_ground_truth

TINY = {
    "stages": ["sae", "kd"],
    "model": {"source": "synthetic", "name": "synth"},
    "cache": {"train_tokens": 8192, "heldout_tokens": 1024, "shard_tokens": 4096, "dtype": "float32"},
    "synthetic": {"d_model": 16, "n_features": 32, "alpha": 0.9, "noise_std": 0.0, "seed": 0},
    "sae": {"trials": {"A": {"l1_form": "mean", "l1_coefficient": 3.0e-4, "adaptive": None},
                       "C": {"l1_form": "sum", "l1_coefficient": 5.0e-3,
                             "adaptive": {"target_l0": 4, "rate": 0.05, "update_interval": 1, "bounds": [1e-6, 1.0]}}},
            "expansion": 4, "batch_size": 256, "training_tokens": 12800, "snapshots": [5000, 10000],
            "log_every": 5, "alive_window_tokens": 2048},
}
TINY["kd"] = {"batch_size": 512, "figures": {"A": ["kd_quantities"], "C": ["kd_quantities"]}}
BASE = "results/sae/{trial}/synth/final"


@pytest.fixture(scope="module")
def sae_workdir(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("sae"), TINY)
    run_snakemake(workdir, "all")
    return workdir


@pytest.mark.parametrize("trial", ["A", "C"])
def test_every_snapshot_in_both_layouts(sae_workdir, trial):
    base = sae_workdir / BASE.format(trial=trial)
    for snapshot in ("5k", "10k", "final"):
        folder = base / "L00" / snapshot
        cfg = json.loads((folder / "cfg.json").read_text())
        assert cfg["architecture"] == "standard" and cfg["d_in"] == 16 and cfg["d_sae"] == 64
        assert cfg["metadata"]["trial"] == trial and cfg["metadata"]["snapshot"] == snapshot
        prov = cfg["metadata"]["provenance"]
        assert "git_commit" in prov and prov["config_sha256"] and set(prov["seed"]) == {"init", "data"}
        pt = torch.load(base / f"sae_layer00_{snapshot}.pt", weights_only=True)
        assert set(pt) == {"W_enc", "b_enc", "W_dec", "b_dec", "cfg"}
        assert cfg["normalize_activations"] == "none" and cfg["metadata"]["input_scale"] > 0
        assert cfg["metadata"]["recipe"]["init"]["W_enc"] == "W_dec transposed"
        x = torch.randn(8, 16)
        sae = load_sae(folder)
        torch.testing.assert_close(sae(x)[0], load_sae(base / f"sae_layer00_{snapshot}.pt")(x)[0], rtol=0, atol=0)
        # SAELens's standard forward on the raw weights file (apply_b_dec_to_input, no normalisation):
        weights = load_file(folder / "sae_weights.safetensors")
        latents = torch.relu((x - weights["b_dec"]) @ weights["W_enc"] + weights["b_enc"])
        torch.testing.assert_close(latents, sae.encode(x))
        torch.testing.assert_close(latents @ weights["W_dec"] + weights["b_dec"], sae(x)[0])
        norms = torch.linalg.vector_norm(weights["W_dec"], dim=1)
        torch.testing.assert_close(norms, torch.ones_like(norms))
    assert not (base / "L00" / ".train").exists(), "the resume work dir is removed after success"


def test_training_log_and_provenance(sae_workdir):
    log = pd.read_csv(sae_workdir / BASE.format(trial="A") / "L00/training_log.csv")
    assert list(log.columns) == ["step", "tokens", "mse", "l1", "l1_penalty", "loss", "l0", "lambda", "frac_alive"]
    assert log["tokens"].iloc[-1] == 50 * 256
    assert log["lambda"].nunique() == 1 and log["lambda"].iloc[0] == pytest.approx(3.0e-4), "fixed trials keep λ"
    assert log["mse"].iloc[-1] < log["mse"].iloc[0]
    prov = read_provenance(sae_workdir / BASE.format(trial="A") / "L00/training_log.csv")
    assert prov["config"]["trial"] == "A" and prov["inputs"]["manifest_L00"]["sha256"]


def test_trials_share_init_and_data(sae_workdir):
    """Same seeds for every trial: the first logged step (before any update) has the same MSE."""
    first = [pd.read_csv(sae_workdir / BASE.format(trial=t) / "L00/training_log.csv").iloc[0] for t in ("A", "C")]
    assert first[0]["mse"] == pytest.approx(first[1]["mse"], rel=1e-6)
    assert first[0]["l0"] == first[1]["l0"]


def test_recovery_scored_against_ground_truth(sae_workdir):
    table = pd.read_csv(sae_workdir / BASE.format(trial="C") / "L00/recovery.csv")
    assert list(table["snapshot"]) == ["5k", "10k", "final"]
    # MMCS re-derived here from the ground truth and each exported decoder (float32 cosines: 1e-6)
    truth = load_ground_truth(sae_workdir / "results/cache/synth/final/L00")
    for snapshot, mmcs in zip(table["snapshot"], table["mmcs"]):
        decoder = load_sae(sae_workdir / BASE.format(trial="C") / "L00" / snapshot).W_dec.detach()
        cosines = torch.nn.functional.normalize(truth, dim=1) @ torch.nn.functional.normalize(decoder, dim=1).T
        assert mmcs == pytest.approx(cosines.amax(1).mean().item(), abs=1e-6), snapshot
    manifest = json.loads((sae_workdir / "results/cache/synth/final/L00/manifest.json").read_text())
    assert manifest["synthetic"]["true_l0"] == pytest.approx(3.2)


def test_logs_benchmarks_and_nothing_left_to_do(sae_workdir):
    assert "2 SAEs" in (sae_workdir / "results/logs/sae/synth/final/L00.log").read_text(), "one job, both trials"
    assert (sae_workdir / "results/benchmarks/sae/synth/final/L00.tsv").exists()
    proc = run_snakemake(sae_workdir, "all", extra=["-n"])
    assert "Nothing to be done" in proc.stdout + proc.stderr



def test_kd_records_carry_the_ground_truth(sae_workdir):
    rec = json.loads((sae_workdir / "results/kd/C/synth/final/L00/final.json").read_text())
    assert (rec["true_f"], rec["true_alpha"]) == (32, 0.9) and rec["true_l0"] == pytest.approx(3.2)
    assert rec["tokens"] == 12800 and rec["alpha"] == pytest.approx(1 - rec["l0"] / rec["f_alive"])
    splits = json.loads((sae_workdir / "results/cache/synth/final/L00/manifest.json").read_text())["splits"]
    assert rec["n_tokens"] == splits["heldout"]["n_tokens"] == 1024, "measured on the held-out split, all of it"
    assert_figure_drawn_from_current_tables(sae_workdir, "results/figures/sae/C/kd_quantities.png", "kd_quantities")


def test_no_lm_no_splice_metrics(sae_workdir):
    """The synthetic source has no language model: the CE columns are there, NaN, and no job spliced."""
    metrics = pd.read_csv(sae_workdir / "results/kd/C/metrics.csv")
    assert metrics[["ce_clean", "ce_recovered_zero", "ce_recovered_mean", "kl_clean_spliced"]].isna().all().all()
    assert (metrics["explained_variance"] - (1 - metrics["fvu"])).abs().max() < 1e-12
    assert not list((sae_workdir / "results/kd/C").rglob("*.splice.json"))
    assert (sae_workdir / "results/figures/sae/evaluation_pareto.png").is_file()


def test_config_changes_rerun_exactly_the_jobs_they_affect(sae_workdir):
    def add_trial(config):
        config["sae"]["trials"]["D"] = {"l1_form": "sum", "l1_coefficient": 1.0e-3, "adaptive": None}
        config["kd"]["figures"]["D"] = ["kd_quantities"]

    def threads(config):
        config["sae"]["threads"] = 2

    def trial_lambda(config):
        config["sae"]["trials"]["A"]["l1_coefficient"] = 4.0e-4

    def shared_lr(config):
        config["sae"]["lr"] = 1.0e-3

    def alive_threshold(config):
        config["kd"]["alive_threshold"] = 1.0e-4

    # Every trial of a layer group trains in one job (one pass over the data), so a change to one
    # trial reruns the group and the measurements of every trial it wrote.
    # A trial's figures are one job (its own rule, sae_figures_{trial}); one job measures a layer's trials.
    per_trial = {"sae_recovery": 1, "kd_table": 1}
    figures = {"sae_figures_A": 1, "sae_figures_C": 1}
    group = {"sae_train_L00": 1, "kd_measure": 1, "sae_compare_trials": 1, "sae_evaluation_figure": 1, "all": 1}
    both_trials = {**group, **figures, **{k: 2 * v for k, v in per_trial.items()}}
    assert planned_jobs(sae_workdir, "all", change=add_trial) == {
        **group, **figures, "sae_figures_D": 1, **{k: 3 * v for k, v in per_trial.items()}}
    assert planned_jobs(sae_workdir, "all", change=threads) == {}, "threads do not change the numbers"
    assert planned_jobs(sae_workdir, "all", change=trial_lambda) == both_trials
    assert planned_jobs(sae_workdir, "all", change=shared_lr) == both_trials
    assert planned_jobs(sae_workdir, "all", change=alive_threshold) == {
        "kd_measure": 1, "kd_table": 2, **figures, "sae_compare_trials": 1, "sae_evaluation_figure": 1, "all": 1}
