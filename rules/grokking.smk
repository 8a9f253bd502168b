# Grokking for under-sampled Camelyon17 (SCIENCE.md §4): the synthetic WILDS-layout fixture,
# ResNet-18 runs in two regimes, the modular-addition positive control, the summary and figures.
import functools

from interplab.grok.data import DatasetMissingError, check_root
from interplab.grok.runs import camelyon_runs, modular_runs, spec_to_dict

GROK = config["grok"]
GROK_FIXTURE = f"{RESULTS}/grok/data/fixture"
try:
    GROK_CAMELYON_RUNS = camelyon_runs(GROK, GROK_FIXTURE)
    GROK_MODULAR_RUNS = modular_runs(GROK)
except ValueError as error:
    raise WorkflowError(f"Invalid configuration. {error}") from None
GROK_RUNS = {**GROK_CAMELYON_RUNS, **GROK_MODULAR_RUNS}
GROK_FIGURES = {
    "accuracy_curves": "accuracy_curves.rst",
    "regime_curves": "regime_curves.rst",
    "ungrokking_overview": "ungrokking_overview.rst",
    "weight_norms": "weight_norms.rst",
    "modular_control": "modular_control.rst",
}

register_targets("grok", [f"{RESULTS}/grok/summary.csv"])
register_targets("grok", expand(f"{RESULTS}/figures/grok/{{fig}}.png", fig=GROK_FIGURES))


def grok_run_spec(wildcards):
    return spec_to_dict(GROK_RUNS[wildcards.run])


def grok_fixture_config(wildcards):
    return {**GROK["fixture"], "shortcut_hospitals": GROK["data"]["train_hospitals"]}


@functools.cache
def real_data_inputs():
    """A real Camelyon17 root's metadata.csv, checked once while the DAG is built: a job that found it
    missing would fail only after Snakemake had deleted the run's previous outputs."""
    try:
        return [str(check_root(GROK["data"]["root_dir"]) / "metadata.csv")]
    except DatasetMissingError as error:
        if workflow.dryrun:  # a dry run may plan a cluster run before the data is downloaded
            logger.warning(f"Dry run only (a real run stops here): grok.data.root_dir: {error}")
            return []
        raise WorkflowError(f"Invalid configuration. grok.data.root_dir: {error}") from None


def grok_data_input(wildcards):
    """The fixture the DAG builds, or the configured Camelyon17 download."""
    return [GROK_FIXTURE] if GROK["data"]["source"] == "fixture" else real_data_inputs()


rule grok_fixture:
    """Synthetic five-hospital Camelyon17 in the WILDS layout: stain shortcut, central tumour cue."""
    output:
        directory(GROK_FIXTURE),
    params:
        fixture=grok_fixture_config,
    log:
        f"{LOGS}/grok/fixture.log",
    benchmark:
        f"{BENCH}/grok/fixture.tsv"
    threads: 1
    resources:
        mem_mb=by_attempt(1000),
        runtime=by_attempt(20),
    script:
        "../scripts/grok_fixture.py"


rule grok_train:
    """One ResNet-18 run on Camelyon17: dense checkpoints, per-epoch history, resumable after a kill."""
    input:
        grok_data_input,
    output:
        manifest=f"{RESULTS}/grok/runs/{{run}}/manifest.json",
        history=f"{RESULTS}/grok/runs/{{run}}/history.csv",
    params:
        spec=grok_run_spec,
        device=config["device"],
    wildcard_constraints:
        run=pinned(GROK_CAMELYON_RUNS),
    log:
        f"{LOGS}/grok/runs/{{run}}.log",
    benchmark:
        f"{BENCH}/grok/runs/{{run}}.tsv"
    threads: 1
    resources:
        mem_mb=by_attempt(4000),
        runtime=by_attempt(240),
        gpu=1,
    script:
        "../scripts/grok_train.py"


rule grok_modular:
    """Modular-addition positive control: one-layer transformer, full-batch AdamW, with or without Grokfast."""
    output:
        manifest=f"{RESULTS}/grok/runs/{{run}}/manifest.json",
        history=f"{RESULTS}/grok/runs/{{run}}/history.csv",
    params:
        spec=grok_run_spec,
        device=config["device"],
    wildcard_constraints:
        run=pinned(GROK_MODULAR_RUNS),
    log:
        f"{LOGS}/grok/runs/{{run}}.log",
    benchmark:
        f"{BENCH}/grok/runs/{{run}}.tsv"
    threads: 1
    resources:
        mem_mb=by_attempt(3000),
        runtime=by_attempt(120),
        gpu=1,
    script:
        "../scripts/grok_train.py"


rule grok_summary:
    """Per run: peak OOD epoch, peak and final OOD accuracy, grokked / ungrokked / neither."""
    input:
        expand(f"{RESULTS}/grok/runs/{{run}}/manifest.json", run=GROK_RUNS),
    output:
        f"{RESULTS}/grok/summary.csv",
    params:
        criteria=GROK["classification"],
    log:
        f"{LOGS}/grok/summary.log",
    benchmark:
        f"{BENCH}/grok/summary.tsv"
    localrule: True
    script:
        "../scripts/grok_summary.py"


rule grok_figure:
    input:
        summary=rules.grok_summary.output[0],
        manifests=expand(f"{RESULTS}/grok/runs/{{run}}/manifest.json", run=GROK_RUNS),
    output:
        report(
            f"{RESULTS}/figures/grok/{{fig}}.png",
            caption="../report/grok/captions.rst",
            category="4. Grokking (Camelyon17)",
        ),
        pdf=f"{RESULTS}/figures/grok/{{fig}}.pdf",
    wildcard_constraints:
        fig=pinned(GROK_FIGURES),
    log:
        f"{LOGS}/figures/grok/{{fig}}.log",
    benchmark:
        f"{BENCH}/figures/grok/{{fig}}.tsv"
    localrule: True
    script:
        "../scripts/grok_figure.py"
