"""Run the toy stage's rules through real Snakemake on a tiny grid."""
import pandas as pd
import pytest

from conftest import make_workdir, planned_jobs, run_snakemake
from interplab.io import read_provenance

TINY_TOY = {"n_features": [8], "alphas": [0.8, 0.95], "n_seeds": 2, "n_widths": 4, "steps": 150,
            "batch_size": 64, "eval_samples": 1000}


@pytest.fixture(scope="module")
def toy_workdir(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("toy"), {"stages": ["toy"], "toy": TINY_TOY})
    run_snakemake(workdir, "all")
    return workdir


def test_toy_run_table(toy_workdir):
    runs = pd.read_parquet(toy_workdir / "results/toy/runs/F8_a0.8_direct.parquet")
    assert set(runs["seed"]) == {0, 1}
    assert sorted(runs["student_width"].unique()) == [1, 2, 4, 8]
    # The end-of-training window agrees with the held-out loss on fresh samples (gaps of at most 0.007
    # measured on this configuration in the unit test; an early-training window misses by > 0.1).
    assert (runs["final_loss"] - runs["eval_loss"]).abs().max() < 0.02
    prov = read_provenance(toy_workdir / "results/toy/runs/F8_a0.8_direct.parquet")
    assert prov["config"]["n_features"] == 8 and prov["config_sha256"]


def test_summary_has_one_row_per_configuration(toy_workdir):
    summary = pd.read_csv(toy_workdir / "results/toy/summary.csv")
    assert len(summary) == 2
    assert {"predicted_critical_width", "measured_critical_width", "floor_accuracy_refined",
            "floor_accuracy_measured_capacity_n", "measured_critical_width_tol2pct"} <= set(summary.columns)


def test_accuracy_table_has_every_reading_per_alpha(toy_workdir):
    table = pd.read_csv(toy_workdir / "results/toy/accuracy_by_alpha.csv")
    assert set(table["alpha"]) == {0.8, 0.95}
    assert set(table["predictor"]) == {"refined", "naive", "measured_capacity", "measured_capacity_other_F",
                                       "affine_calibrated", "zero"}
    assert set(table["reading"]) == {"relative_to_prediction", "relative_to_measured", "absolute"}
    assert len(table) == 2 * 6 * 3 and (table["n_points"] >= 0).all()
    # One feature count: no other F to fit the capacity on, so that predictor has no points.
    assert (table.loc[table["predictor"] == "measured_capacity_other_F", "n_points"] == 0).all()
    capacity = pd.read_csv(toy_workdir / "results/toy/capacity_fit.csv")
    assert list(capacity["alpha"]) == [0.8, 0.95] and (capacity["capacity_fitted"] > 0).all()


@pytest.mark.parametrize("fig", ["fig1_loss_floor_curves", "fig5_config_heatmap", "fig8_floor_vs_dstar",
                                 "fig9_sparsity_effect"])
def test_figures_are_nonempty_pngs_with_pdf_twins(toy_workdir, fig):
    data = (toy_workdir / f"results/figures/toy/{fig}.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert (toy_workdir / f"results/figures/toy/{fig}.pdf").read_bytes()[:5] == b"%PDF-"


def test_logs_and_benchmarks_written(toy_workdir):
    assert (toy_workdir / "results/logs/toy/runs/F8_a0.8_direct.log").exists()
    assert (toy_workdir / "results/benchmarks/toy/runs/F8_a0.8_direct.tsv").exists()


def test_rerun_has_nothing_to_do(toy_workdir):
    proc = run_snakemake(toy_workdir, "all", extra=["-n"])
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_invalid_config_stops_before_dag(tmp_path):
    workdir = make_workdir(tmp_path, {"toy": {"alphas": [0.5, 1.2]}})
    proc = run_snakemake(workdir, "all", extra=["-n"], check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "toy.alphas[1]" in out and "1.2" in out and "Invalid configuration" in out
    assert "Traceback" not in out


def test_report_has_every_figure_with_its_caption(toy_workdir):
    run_snakemake(toy_workdir, "all", extra=["--report", "results/report.html"])
    html = (toy_workdir / "results/report.html").read_text(errors="ignore")
    for fig in ("fig1_loss_floor_curves", "fig5_config_heatmap", "fig8_floor_vs_dstar", "fig9_sparsity_effect"):
        assert fig in html
    assert "Loss-floor curves" in html and "Sparsity effect" in html
    assert "accuracy_by_alpha.csv" in html and "Prediction accuracy per sparsity" in html


def test_config_changes_rerun_exactly_the_jobs_they_affect(toy_workdir):
    def steps(config):
        config["toy"]["steps"] += 1

    def tolerance(config):
        config["toy"]["critical_tolerance"] = 0.1

    def alpha(config):
        config["toy"]["alphas"] = [0.8, 0.9]

    def sweep(config):
        config["toy"]["critical_tolerance_sweep"] = [0.2]

    figures = {"toy_figures": 1, "all": 1}
    assert planned_jobs(toy_workdir, "all") == {}
    assert planned_jobs(toy_workdir, "all", change=steps) == {"toy_run": 2, "toy_summary": 1, **figures}
    assert planned_jobs(toy_workdir, "all", change=tolerance) == {"toy_summary": 1, **figures}
    assert planned_jobs(toy_workdir, "all", change=alpha) == {"toy_run": 1, "toy_summary": 1, **figures}
    assert planned_jobs(toy_workdir, "all", change=sweep) == {"toy_summary": 1, **figures}


def test_nested_command_line_config_is_parsed(toy_workdir):
    """`--config 'toy={steps: 151}'` reaches the config as the string '151'; it must act as the number."""
    proc = run_snakemake(toy_workdir, "all", extra=["-n", "--config", "toy={steps: 151, lr: 1e-3}"])
    out = proc.stdout + proc.stderr
    assert "Params have changed" in out and "'steps': 151" in out and "'lr': 0.001" in out
