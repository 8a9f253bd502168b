"""The interventions rules through real Snakemake: two tiny grokking runs → tables, stats, figures."""
import pandas as pd
import pytest
import yaml

from conftest import ROOT, assert_figure_drawn_from_current_tables, make_workdir, run_snakemake
from interplab.io import read_provenance

FIGURES = ["probe_heatmaps", "ablation", "steering", "neurons", "stats"]
RUNS = ["grokking-n60-s0", "standard-n60-s0"]


def tiny_config() -> dict:
    grok = yaml.safe_load((ROOT / "config.yaml").read_text())["grok"]
    grok.update(fixture={**grok["fixture"], "n_per_hospital": 30, "image_size": 16}, epochs=2, batch_size=30,
                checkpoints={"log_points": 0, "every": 1}, data={**grok["data"], "max_eval": 30},
                runs=[{"regime": "standard", "n_train": 60, "seeds": [0]}, {"regime": "grokking", "n_train": 60, "seeds": [0]}])
    interventions = {"random_draws": 2, "random_k_draws": 2, "bootstrap_samples": 100, "neuron_k": [0, 8, 600],
                     "criteria": {"neuron_k": 8}}
    return {"stages": ["grok"], "grok": grok, "interventions": interventions}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("interventions"), tiny_config())
    run_snakemake(workdir, "results/interventions/stats.csv",
                  *[f"results/figures/interventions/{fig}.png" for fig in FIGURES])
    return workdir


def test_per_run_tables_with_provenance(workdir):
    for run in RUNS:
        for name in ("probes", "ablation", "steering", "neurons"):
            table = pd.read_csv(workdir / f"results/interventions/{run}/{name}.csv")
            assert len(table) > 0
            prov = read_provenance(workdir / f"results/interventions/{run}/{name}.csv")
            assert prov["config"]["run"] == run and prov["inputs"]["manifest"]["sha256"]
        neurons = pd.read_csv(workdir / f"results/interventions/{run}/neurons.csv")
        assert sorted(neurons["k"].unique()) == [0, 8, 512], "K = 600 is capped at layer4's 512 channels"
        probes = pd.read_csv(workdir / f"results/interventions/{run}/probes.csv")
        assert sorted(probes["epoch"].unique()) == [0, 1, 2] and probes["selected"].sum() == 8


def test_stats_counts_both_regimes_and_says_what_sample_size_is_needed(workdir):
    stats = pd.read_csv(workdir / "results/interventions/stats.csv")
    assert len(stats) == 5 and set(stats["n_train"]) == {60}
    assert (stats["n_treatment"] == 1).all() and (stats["n_control"] == 1).all()
    assert stats["power"].str.contains("no count can be significant").all()
    criteria = pd.read_csv(workdir / "results/interventions/criteria.csv")
    assert set(criteria["run"]) == set(RUNS) and len(criteria) == 10


@pytest.mark.parametrize("fig", FIGURES)
def test_figures_are_drawn_from_the_stats(workdir, fig):
    assert_figure_drawn_from_current_tables(workdir, f"results/figures/interventions/{fig}.png", fig)


def test_logs_benchmarks_and_nothing_left_to_do(workdir):
    assert (workdir / f"results/logs/interventions/{RUNS[0]}.log").exists()
    assert (workdir / f"results/benchmarks/interventions/{RUNS[0]}.tsv").exists()
    proc = run_snakemake(workdir, "results/interventions/stats.csv", extra=["-n"])
    assert "Nothing to be done" in proc.stdout + proc.stderr


@pytest.mark.parametrize("key, value, named", [
    ("compare", {"treatment": "grokfast-only", "control": "standard"}, ["grokfast-only", "grok.regimes"]),
    ("criteria", {"neuron_k": 32}, ["criteria.neuron_k 32", "interventions.neuron_k"]),
])
def test_inconsistent_config_stops_before_the_dag(tmp_path, key, value, named):
    config = tiny_config()
    config["interventions"][key] = value
    proc = run_snakemake(make_workdir(tmp_path, config), "results/interventions/stats.csv", extra=["-n"], check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and all(text in out for text in named) and "Traceback" not in out
