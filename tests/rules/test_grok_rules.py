"""Run the grokking stage's rules through real Snakemake: fixture → runs → summary → figures.

The Camelyon17 runs are tiny; the modular-addition control runs with the default config's own
settings (plain variant only), so this is also the check that the default control groks: held-out
accuracy crosses 95% at least five fitting times after the training set is fitted.
"""
import pandas as pd
import pytest
import yaml

from conftest import ROOT, assert_figure_drawn_from_current_tables, make_workdir, planned_jobs, run_snakemake
from interplab.grok import checkpoints as ckpt
from interplab.grok.analysis import Criteria, curve_summary
from interplab.grok.runs import CAMELYON, MODULAR, modular_runs, spec_from_dict
from interplab.io import read_provenance

DEFAULT_GROK = yaml.safe_load((ROOT / "config.yaml").read_text())["grok"]
CONTROL = "modadd-plain-s0"
TINY_GROK = {
    "fixture": {**DEFAULT_GROK["fixture"], "n_per_hospital": 40, "image_size": 16},
    "data": {**DEFAULT_GROK["data"], "max_eval": 40},
    "epochs": 3,
    "batch_size": 16,
    "runs": [{"regime": "standard", "n_train": 48, "seeds": [0]}, {"regime": "grokking", "n_train": 48, "seeds": [0]}],
    "checkpoints": {"log_points": 2, "every": 0},
    "modular": {**DEFAULT_GROK["modular"], "variants": ["plain"], "seeds": [0]},
}
CAMELYON_RUNS = ["standard-n48-s0", "grokking-n48-s0"]
FIGURES = ["accuracy_curves", "regime_curves", "ungrokking_overview", "weight_norms", "modular_control"]
TARGETS = ["results/grok/summary.csv", *(f"results/figures/grok/{fig}.png" for fig in FIGURES)]


def grok_workdir(path, **grok):
    return make_workdir(path, {"stages": ["grok"], "grok": {**DEFAULT_GROK, **TINY_GROK, **grok}})


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    workdir = grok_workdir(tmp_path_factory.mktemp("grok"))
    run_snakemake(workdir, *TARGETS)
    return workdir


@pytest.mark.parametrize("run", CAMELYON_RUNS)
def test_camelyon_run_directory(workdir, run):
    run_dir = workdir / "results/grok/runs" / run
    manifest = ckpt.manifest(run_dir)
    assert ckpt.checkpoint_epochs(run_dir) == [0, 1, 3]
    assert all((run_dir / entry["file"]).exists() for entry in manifest["checkpoints"])
    assert not (run_dir / ckpt.RESUME).exists()
    history = pd.read_csv(run_dir / ckpt.HISTORY)
    assert history["epoch"].tolist() == [0, 1, 2, 3]
    assert {"train_acc", "id_acc", "ood_acc", "ood_loss", "norm_conv", "norm_bn", "norm_fc"} <= set(history.columns)
    prov = read_provenance(run_dir / ckpt.HISTORY)
    assert prov["seed"] == 0 and prov["config"]["setup"]["n_train"] == 48
    assert {"metadata", "release"} <= set(prov["inputs"])


def test_grokking_regime_scales_the_initial_weights(workdir):
    norms = {run: pd.read_csv(workdir / "results/grok/runs" / run / ckpt.HISTORY).iloc[0] for run in CAMELYON_RUNS}
    ratio = norms["grokking-n48-s0"]["norm_fc"] / norms["standard-n48-s0"]["norm_fc"]
    assert ratio == pytest.approx(DEFAULT_GROK["regimes"]["grokking"]["init_scale"], rel=1e-5)


def test_default_modular_control_groks_with_a_delay(workdir):
    manifest = ckpt.manifest(workdir / "results/grok/runs" / CONTROL)
    assert spec_from_dict(manifest["spec"]) == modular_runs(DEFAULT_GROK)[CONTROL]  # exactly the default's control
    row = pd.read_csv(workdir / "results/grok/summary.csv").set_index("run").loc[CONTROL]
    assert row["final_ood_acc"] > 0.95 and row["final_train_acc"] == 1.0
    assert row["classification"] == "grokked" and row["heldout_split"] == "test"
    assert row["delay"] >= 5 * row["fit_epoch"], "generalises at least five fitting times after fitting"


def test_summary_has_one_row_per_run(workdir):
    summary = pd.read_csv(workdir / "results/grok/summary.csv")
    assert sorted(summary["run"]) == sorted([*CAMELYON_RUNS, CONTROL])
    criteria = Criteria(**DEFAULT_GROK["classification"])
    for row in summary.itertuples():
        # every value re-derived from the run's own history, on its own held-out split
        history = pd.read_csv(workdir / "results/grok/runs" / row.run / ckpt.HISTORY)
        heldout = "test" if row.run == CONTROL else "ood"
        assert row.heldout_split == heldout and row.task == (MODULAR if row.run == CONTROL else CAMELYON)
        acc = history[f"{heldout}_acc"]
        assert (row.peak_ood_acc, row.final_ood_acc, row.final_train_acc) == (
            acc.max(), acc.iloc[-1], history["train_acc"].iloc[-1])
        assert row.peak_ood_epoch == history["epoch"][acc.idxmax()] and row.epochs == history["epoch"].iloc[-1]
        expected = curve_summary(history, heldout, criteria, row.task)
        assert row.classification == expected["classification"], row.run


@pytest.mark.parametrize("fig", FIGURES)
def test_figures_are_drawn_from_the_summary(workdir, fig):
    assert_figure_drawn_from_current_tables(workdir, f"results/figures/grok/{fig}.png", fig)


def test_logs_and_benchmarks_written(workdir):
    assert (workdir / "results/logs/grok/runs/grokking-n48-s0.log").exists()
    assert (workdir / f"results/benchmarks/grok/runs/{CONTROL}.tsv").exists()


def test_rerun_has_nothing_to_do(workdir):
    proc = run_snakemake(workdir, *TARGETS, extra=["-n"])
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_missing_camelyon_root_stops_before_any_job_and_keeps_outputs(tmp_path):
    missing = tmp_path / "no-camelyon"
    workdir = grok_workdir(tmp_path / "wd", data={**TINY_GROK["data"], "source": "wilds", "root_dir": str(missing)})
    earlier = workdir / "results/grok/runs/standard-n48-s0/manifest.json"
    earlier.parent.mkdir(parents=True)
    earlier.write_text("{}")  # a previous run's output, which a failing job would have deleted
    proc = run_snakemake(workdir, str(earlier.relative_to(workdir)), extra=["--forcerun", "grok_train"], check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Invalid configuration" in out
    assert f"{missing}/camelyon17_v1.0 does not exist" in out and "download=True" in out
    assert earlier.read_text() == "{}" and not (workdir / "results/logs/grok/runs/standard-n48-s0.log").exists()


def test_ood_hospital_among_training_hospitals_stops_before_dag(tmp_path):
    workdir = grok_workdir(tmp_path, data={**TINY_GROK["data"], "ood_hospital": 0})
    proc = run_snakemake(workdir, *TARGETS, extra=["-n"], check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Invalid configuration" in out and "ood_hospital 0" in out
    assert "Traceback" not in out


def test_config_changes_rerun_exactly_the_jobs_they_affect(workdir):
    def epochs(config):
        config["grok"]["epochs"] = 4

    def control_lr(config):
        config["grok"]["modular"]["lr"] = 0.002

    def regime(config):
        config["grok"]["regimes"]["grokking"]["weight_decay"] = 0.5

    after = {"grok_summary": 1, "grok_figures": 1}
    assert planned_jobs(workdir, *TARGETS, change=epochs) == {"grok_train": 2, **after}
    assert planned_jobs(workdir, *TARGETS, change=control_lr) == {"grok_modular": 1, **after}
    assert planned_jobs(workdir, *TARGETS, change=regime) == {"grok_train": 1, **after}
