"""The language-model half of the DAG through real Snakemake on a tiny local teacher, in one run:
tokenizer, token streams, teacher, caches (stage lm), then SAEs, KD metrics, figures and the hub
folder on those caches (stages sae, kd, publish), so the stages are checked where they connect.
The SAE stage's own test (synthetic source) covers trials, resume and ground truth."""
import json
import shutil

import numpy as np
import pandas as pd
import pytest
import yaml
from safetensors.torch import load_file

from conftest import assert_figure_drawn_from_current_tables, make_workdir, planned_jobs, run_snakemake
from interplab.activations import ActivationCache
from interplab.distill.probe import wilson_interval
from interplab.teacher.tokenizer import load_tokenizer

TINY_MODEL = {
    "name": "tiny-neox", "revisions": ["step4", "final"], "layers": "all", "context_length": 32, "batch_size": 8,
    "corpus": {"source": "stdlib", "max_documents": 40},
    "teacher": {"vocab_size": 512, "d_model": 32, "n_layers": 2, "n_heads": 2, "d_mlp": 64, "steps": 8,
                "batch_size": 4, "warmup_steps": 2, "eval_rows": 4},
}
TINY_CACHE = {"train_tokens": 2048, "heldout_tokens": 512, "shard_tokens": 1000, "dtype": "float16"}
CACHES = [f"results/cache/tiny-neox/{ckpt}/L{layer:02d}" for ckpt in ("step4", "final") for layer in (0, 1)]
TINY_SAE = {"trials": {"B": {"l1_form": "sum", "l1_coefficient": 1.0e-3, "adaptive": None}},
            "expansion": 2, "batch_size": 256, "training_tokens": 2560, "snapshots": [1280], "log_every": 2,
            "alive_window_tokens": 1024, "b_pre_init_tokens": 512}
TINY_KD = {"batch_size": 256, "figures": {"B": ["premium_heatmap", "metric_vs_tokens"]}}
TINY_SIZES = {"layer": 1, "expansions": [1, 2, 4], "l1_coefficient": 1.0e-3, "training_tokens": 2560}
TINY_DISTILL = {"widths": [8, 16], "seeds": [0], "steps": 6, "batch_size": 4, "warmup_steps": 2, "eval_every": 2,
                "eval_rows": 4, "floor_fraction": 0.5, "predict": {"trial": "B", "snapshot": "final"},
                "probe": {"concepts": ["docstring", "base64"], "examples_per_class": 20, "snippet_chars": 60,
                          "max_tokens": 16, "test_fraction": 0.25, "batch_size": 16, "seed": 0}}


@pytest.fixture(scope="module")
def lm_workdir(tmp_path_factory):
    workdir = make_workdir(tmp_path_factory.mktemp("lm"), {"stages": ["lm", "sae", "kd", "sizes", "distill", "publish"],
                                                          "model": TINY_MODEL, "cache": TINY_CACHE,
                                                          "sae": TINY_SAE, "kd": TINY_KD, "sizes": TINY_SIZES,
                                                          "distill": TINY_DISTILL})
    run_snakemake(workdir, "all")
    return workdir


def test_teacher_checkpoints_and_summary(lm_workdir):
    teacher = lm_workdir / "results/teacher/tiny-neox"
    for name in ("ckpt-0", "ckpt-1", "ckpt-2", "ckpt-4", "final"):
        assert (teacher / name / "model.safetensors").is_file() and (teacher / name / "tokenizer.json").is_file()
    summary = json.loads((teacher / "summary.json").read_text())
    assert summary["checkpoints"] == ["step0", "step1", "step2", "step4", "final"]
    assert summary["unigram_entropy"] > 0 and summary["final_heldout_loss"] < summary["initial_heldout_loss"]
    assert json.loads((teacher / "corpus.json").read_text())["n_documents"] == 40
    png = (lm_workdir / "results/figures/lm/tiny-neox/teacher_loss.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_caches_have_every_layer_and_revision(lm_workdir):
    streams = json.loads((lm_workdir / "results/tokens/tiny-neox/streams.json").read_text())
    for path in CACHES:
        train, heldout = ActivationCache(lm_workdir / path), ActivationCache(lm_workdir / path, split="heldout")
        assert (train.n_tokens, heldout.n_tokens, train.d_model) == (2048, 512, 32)
        assert [s["rows"] for s in train.shards] == [1000, 1000, 48]
        assert train.manifest["token_stream_sha256"] == streams["sha256"]
        assert train.manifest["revision"] == path.split("/")[-2] and train.manifest["hook"].endswith("hook_resid_post")
        batch = next(train.batches(256, seed=0))
        assert batch.shape == (256, 32) and batch.isfinite().all()
        assert (lm_workdir / path / "provenance.json").is_file()
    # different checkpoints give different activations
    first = ActivationCache(lm_workdir / CACHES[0]).tensor()
    assert not first.equal(ActivationCache(lm_workdir / CACHES[2]).tensor())


def test_logs_and_benchmarks_written(lm_workdir):
    for rel in ("logs/teacher/tiny-neox/train.log", "logs/cache/tiny-neox/final.log",
                "benchmarks/teacher/tiny-neox/train.tsv", "benchmarks/cache/tiny-neox/final.tsv"):
        assert (lm_workdir / "results" / rel).is_file(), rel
    assert "tokens/s" in (lm_workdir / "results/logs/cache/tiny-neox/final.log").read_text()


def test_rerun_has_nothing_to_do(lm_workdir):
    proc = run_snakemake(lm_workdir, "all", extra=["-n"])
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_unknown_revision_stops_before_dag(tmp_path):
    workdir = make_workdir(tmp_path, {"stages": ["lm"], "model": {**TINY_MODEL, "revisions": ["step5"]}})
    proc = run_snakemake(workdir, "all", extra=["-n"], check=False)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0 and "Invalid configuration" in out
    assert "step5" in out and "choose from step0, step1, step2, step4, final" in out
    assert "Traceback" not in out


def test_kd_metrics_for_every_checkpoint_layer_and_snapshot(lm_workdir):
    metrics = pd.read_csv(lm_workdir / "results/kd/B/metrics.csv")
    assert list(metrics.columns[:6]) == ["trial", "model", "ckpt", "layer", "snapshot", "tokens"]
    assert len(metrics) == 2 * 2 * 2, "2 checkpoints × 2 layers × 2 snapshots"
    assert set(metrics["ckpt"]) == {"step4", "final"} and set(metrics["snapshot"]) == {"1280", "final"}
    assert (metrics["n_latents"] == 64).all() and (metrics["f_alive"] + metrics["dead"] == 64).all()
    assert (metrics["dstar"] - metrics["f_alive"] / metrics["g_alpha"]).abs().max() < 1e-9
    rec = json.loads((lm_workdir / "results/kd/B/tiny-neox/final/L01/final.json").read_text())
    assert rec["spectrum"] == sorted(rec["spectrum"], reverse=True) and len(rec["spectrum"]) == rec["f_alive"]
    assert rec["provenance"]["inputs"]["sae"]["sha256"]
    floors = pd.read_csv(lm_workdir / "results/kd/B/floors.csv")
    assert floors.groupby(["ckpt", "layer", "snapshot"])["floor_refined"].apply(lambda f: f.is_monotonic_decreasing).all()


def test_splice_metrics_for_every_snapshot(lm_workdir):
    """SAELens / SAEBench metrics next to the KD ones: explained variance, CE with the reconstruction
    spliced in (against the clean forward and both ablations), KL, and the feature-density record."""
    metrics = pd.read_csv(lm_workdir / "results/kd/B/metrics.csv")
    columns = ["explained_variance", "dense", "ce_clean", "ce_spliced", "ce_zero_ablation", "ce_mean_ablation",
               "ce_recovered_zero", "ce_recovered_mean", "kl_clean_spliced"]
    assert len(metrics) == 8 and metrics[columns].notna().all().all()
    assert np.isfinite(metrics[columns].to_numpy(dtype=float)).all()
    assert (metrics["explained_variance"] - (1 - metrics["fvu"])).abs().max() < 1e-12
    assert (metrics["splice_tokens"] == 496).all(), "the 512 held-out tokens: 16 sequences × 31 predictions"
    assert (metrics["kl_clean_spliced"] > 0).all()
    # one forward per batch serves every snapshot of a layer: the references are shared
    assert (metrics.groupby(["ckpt", "layer"])[["ce_clean", "ce_zero_ablation", "ce_mean_ablation"]].nunique() == 1).all().all()
    rec = json.loads((lm_workdir / "results/kd/B/tiny-neox/final/L01/final.splice.json").read_text())
    assert rec["ce_recovered_convention"] == "zero" and rec["provenance"]["inputs"]["sae"]["sha256"]
    density = pd.read_csv(lm_workdir / "results/kd/B/density.csv")
    per_snapshot = density.groupby(["ckpt", "layer", "snapshot"])
    assert len(per_snapshot) == 8
    assert ((per_snapshot["latents"].sum() + per_snapshot["never_fired"].first()) == 64).all()
    assert_figure_drawn_from_current_tables(lm_workdir, "results/figures/sae/evaluation_pareto.png", None)


@pytest.mark.parametrize("path", ["B/premium_heatmap", "B/metric_vs_tokens", "compare_trials",
                                  "B/checkpoint_dynamics"])
def test_sae_figures_follow_config(lm_workdir, path):
    named = path.split("/")[-1] if path in ("B/premium_heatmap", "B/metric_vs_tokens") else None
    assert_figure_drawn_from_current_tables(lm_workdir, f"results/figures/sae/{path}.png", named)
    assert not (lm_workdir / "results/figures/sae/B/kpi_card.png").exists(), "only the figures kd.figures names"


def test_dictionary_sizes_compare_what_their_weights_say(lm_workdir):
    """Seed 003's stage: every size trained with the one λ (summed L1) on the chosen layer; MMCS with the
    next larger size recomputed here from the exported decoders; alive counts from the KD measurement."""
    base = lm_workdir / "results/sizes/tiny-neox/final/L01"
    sizes = pd.read_csv(base / "sizes.csv")
    assert sizes["size"].tolist() == [32, 64, 128] and sizes["dictionary"].tolist() == ["x1", "x2", "x4"]
    decoders = {}
    for name, size in zip(sizes["dictionary"], sizes["size"]):
        cfg = json.loads((base / name / "final/cfg.json").read_text())
        assert (cfg["d_sae"], cfg["metadata"]["hook_name"]) == (size, "blocks.1.hook_resid_post")
        assert cfg["metadata"]["l1_form"] == "sum" and cfg["metadata"]["l1_coefficient"] == pytest.approx(1.0e-3)
        w = load_file(str(base / name / "final/sae_weights.safetensors"))["W_dec"].double().numpy()
        decoders[size] = w / np.linalg.norm(w, axis=1, keepdims=True)
    features = pd.read_csv(base / "features.csv")
    for small, large in [(32, 64), (64, 128)]:
        mcs = (decoders[small] @ decoders[large].T).max(1)
        row = sizes[sizes["size"] == small].iloc[0]
        assert row["mmcs_with_larger"] == pytest.approx(mcs.mean(), abs=1e-6)
        learned = features[(features["kind"] == "learned") & (features["size"] == small)].sort_values("latent")
        assert np.allclose(learned["mcs_with_larger"], mcs, atol=1e-6)
        alive = learned["alive"].to_numpy()
        assert row["n_alive"] == alive.sum() == row["f_alive"]
        assert row["mmcs_alive"] == pytest.approx(mcs[alive].mean(), abs=1e-6)
        assert row["n_matched"] == (mcs[alive] > 0.9).sum()
    assert sizes["n_tokens"].eq(512).all(), "measured on the held-out split"
    assert pd.isna(sizes["mmcs_with_larger"].iloc[-1])
    for fig in ("mmcs_vs_size", "mcs_histograms", "neuron_basis"):
        assert_figure_drawn_from_current_tables(lm_workdir, f"results/figures/sizes/{fig}.png", fig)


def test_feature_browser_shows_decoded_held_out_contexts(lm_workdir):
    streams = load_file(str(lm_workdir / "results/tokens/tiny-neox/streams.safetensors"))["heldout"].reshape(-1)
    tokenizer = load_tokenizer(lm_workdir / "results/teacher/tiny-neox/tokenizer")
    for layer in ("00", "01"):
        record = json.loads((lm_workdir / f"results/features/B/L{layer}.json").read_text())
        assert record["hook_name"] == f"blocks.{int(layer)}.hook_resid_post" and record["revision"] == "final"
        assert record["features"], "some latents are shown"
        for feature in record["features"]:
            for example in feature["activations"]:
                peak = example["maxValueTokenIndex"]
                # The peak's value, read in the second pass, is the first pass's (a window may also show
                # a stronger top row of the same latent, never one above the latent's maximum).
                assert example["values"][peak] == pytest.approx(example["maxValue"], rel=1e-5) and example["maxValue"] > 0
                assert max(example["values"]) <= feature["maxActValue"] * (1 + 1e-5)
                assert example["tokens"][peak] == tokenizer.decode([int(streams[example["row"]])])
    page = (lm_workdir / "results/features/B/index.html").read_text()
    assert page.count("<h2>") == 2 and "latent " in page


def test_hub_folder_assembled_but_not_uploaded(lm_workdir):
    hub = lm_workdir / "results/publish/B/hub"
    assert {p.name for p in hub.glob("*.pt")} == {"sae_layer00_1280.pt", "sae_layer00_final.pt",
                                                  "sae_layer01_1280.pt", "sae_layer01_final.pt"}
    assert (hub / "saelens/layer_01/final/sae_weights.safetensors").is_file()
    sparsity = load_file(hub / "saelens/layer_01/final/sparsity.safetensors")["sparsity"]
    assert sparsity.shape == (64,) and (sparsity <= 0).all(), "log10 of a firing frequency"
    meta = json.loads((hub / "saelens/layer_01/final/cfg.json").read_text())["metadata"]
    assert (meta["model_name"], meta["hook_name"], meta["context_size"]) == ("tiny-neox", "blocks.1.hook_resid_post", 32)
    assert meta["sae_lens_version"] and meta["dataset_path"] is None and meta["prepend_bos"] is False
    index = yaml.safe_load((hub / "pretrained_saes.yaml").read_text())["tiny-neox-interplab-B"]
    assert [s["path"] for s in index["saes"]] == [f"saelens/layer_{layer:02d}/{snapshot}" for layer in (0, 1)
                                                  for snapshot in ("1280", "final")]
    card = (hub / "README.md").read_text()
    assert "base_model" not in card.split("---")[1], "a local teacher is no hub model"
    assert "license: mit" in card and "fixed λ = 0.001 (sum form)" in card and "32 → 64" in card
    status = json.loads((lm_workdir / "results/publish/B/status.json").read_text())
    assert status["uploaded"] is False and "repo id" in status["reason"]


def test_config_changes_rerun_exactly_the_jobs_they_affect(lm_workdir):
    def teacher_lr(config):
        config["model"]["teacher"]["lr"] = 0.002

    def shard_size(config):
        config["cache"]["shard_tokens"] = 1024

    def kd_widths(config):
        config["kd"]["student_widths"] = [1, 2, 4]

    floors_after = {"distill_floors": 1, "distill_figure": 2}
    sae_and_after = {"sae_train_L00_01": 2, "kd_measure": 4, "kd_splice": 4, "kd_table": 1, "sae_figures_B": 1,
                     "sae_compare_trials": 1, "sae_evaluation_figure": 1, "sae_dynamics_figure": 1, "sae_contexts": 1,
                     "publish_trial": 1, "sizes_train": 1, "sizes_compare": 1, "sizes_figures": 1, "all": 1,
                     **floors_after}
    assert planned_jobs(lm_workdir, "all", change=teacher_lr) == {
        "teacher_train": 1, "teacher_figure": 1, "cache_build": 2, "distill_student": 2, "distill_probe": 1,
        **sae_and_after}
    assert planned_jobs(lm_workdir, "all", change=shard_size) == {"cache_build": 2, **sae_and_after}
    assert planned_jobs(lm_workdir, "all", change=kd_widths) == {
        "kd_measure": 4, "kd_table": 1, "sae_figures_B": 1, "sae_compare_trials": 1, "sae_evaluation_figure": 1,
        "sae_dynamics_figure": 1,
        "publish_trial": 1, "all": 1, **floors_after}


def test_distilled_students_floors_and_probes(lm_workdir):
    base = lm_workdir / "results/distill/tiny-neox"
    for width in (8, 16):
        history = pd.read_csv(base / f"w{width}-s0/history.csv")
        assert history["step"].tolist() == [0, 2, 4, 6] and history["heldout_loss"].notna().all()
        config = json.loads((base / f"w{width}-s0/student/config.json").read_text())
        assert (config["hidden_size"], config["num_hidden_layers"], config["intermediate_size"]) == (width, 2, 4 * width)
    floors = pd.read_csv(base / "floors.csv")
    assert floors["width"].tolist() == [8, 16]
    record = json.loads((lm_workdir / "results/kd/B/tiny-neox/final/L01/final.json").read_text())
    assert floors["sae_alpha"].iloc[0] == pytest.approx(record["alpha"]), "floors predicted by trial B at block 1"
    assert floors["floor_mean"].tolist() == pytest.approx(
        [pd.read_csv(base / f"w{w}-s0/history.csv")["heldout_loss"].iloc[-2:].mean() for w in (8, 16)])
    probes = pd.read_csv(base / "probes.csv")
    assert sorted(probes["model"].unique()) == ["teacher", "w16-s0", "w8-s0"]
    assert set(probes["concept"]) == {"docstring", "base64"} and (probes["layer"] == 1).all()
    assert (probes["n_test"] == 10).all()
    for row in probes.itertuples():  # a count of correct test texts, with its Wilson interval
        correct = round(row.accuracy * row.n_test)
        assert row.accuracy == correct / row.n_test
        assert (row.ci_low, row.ci_high) == pytest.approx(wilson_interval(correct, row.n_test))
    for fig in ("floor_fit", "probe_accuracy"):
        assert_figure_drawn_from_current_tables(lm_workdir, f"results/figures/distill/tiny-neox/{fig}.png", fig)


@pytest.fixture(scope="module")
def stream_workdir(lm_workdir, tmp_path_factory):
    """The same workflow switched to sae.source: stream: the SAEs read the teacher's forward live."""
    workdir = tmp_path_factory.mktemp("stream") / "wf"
    shutil.copytree(lm_workdir, workdir, symlinks=True)
    config_path = workdir / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["sae"]["source"] = "stream"
    config["stages"] = ["lm", "sae", "kd"]
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    planned = planned_jobs(workdir, "all")
    run_snakemake(workdir, "all")
    return workdir, planned


def test_stream_source_trains_from_the_live_forward_with_no_training_cache(stream_workdir):
    workdir, planned = stream_workdir
    assert "cache_build" not in planned and "teacher_train" not in planned
    assert planned["heldout_cache"] == 2 and planned["sae_train_L00_01"] == 2
    for path in CACHES:
        assert ActivationCache(workdir / path).n_tokens == 0, "no training split on disk"
        assert ActivationCache(workdir / path, split="heldout").n_tokens == 512
    log = (workdir / "results/logs/sae/tiny-neox/final/L00_01.log").read_text()
    assert "source stream" in log
    record = json.loads((workdir / "results/kd/B/tiny-neox/final/L01/final.json").read_text())
    assert record["n_tokens"] == 512 and 0 < record["alpha"] < 1
    cfg = json.loads((workdir / "results/sae/B/tiny-neox/final/L01/final/cfg.json").read_text())
    assert cfg["metadata"]["hook_name"] == "blocks.1.hook_resid_post"
    assert_figure_drawn_from_current_tables(workdir, "results/figures/sae/B/premium_heatmap.png", "premium_heatmap")
