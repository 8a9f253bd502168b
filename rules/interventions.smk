# Interventions on the Camelyon17 grokking runs (SCIENCE.md §4): probes, subspace ablation, steering
# and neuron ablation per run, each with its control, then statistics across runs per regime.
# Part of stage grok; needs rules/grokking.smk (GROK, GROK_CAMELYON_RUNS, grok_data_input) included first.
from interplab.interventions.run import InterventionConfig

INTERVENTIONS = config["interventions"]
INTERVENTION_TABLES = ("probes", "ablation", "steering", "neurons")
INTERVENTION_RUNS = sorted(GROK_CAMELYON_RUNS)
INTERVENTION_FIGURES = {
    "probe_heatmaps": "probe_heatmaps.rst",
    "ablation": "ablation.rst",
    "steering": "steering.rst",
    "neurons": "neurons.rst",
    "stats": "stats.rst",
}
register_targets("grok", [f"{RESULTS}/interventions/stats.csv"])
register_targets("grok", expand(f"{RESULTS}/figures/interventions/{{fig}}.png", fig=INTERVENTION_FIGURES))


def intervention_tables(name):
    return expand(f"{RESULTS}/interventions/{{run}}/{name}.csv", run=INTERVENTION_RUNS)


def intervention_inputs():
    """Every run's four tables (one named input per table kind, runs in INTERVENTION_RUNS order)."""
    return {name: intervention_tables(name) for name in INTERVENTION_TABLES}


rule interventions_run:
    """Probes over checkpoints × blocks, and the three interventions with controls, for one Camelyon17 run."""
    input:
        grok_data_input,
        manifest=f"{RESULTS}/grok/runs/{{run}}/manifest.json",
        history=f"{RESULTS}/grok/runs/{{run}}/history.csv",
    output:
        **{name: f"{RESULTS}/interventions/{{run}}/{name}.csv" for name in INTERVENTION_TABLES},
    params:
        interventions=as_params(InterventionConfig.from_config(INTERVENTIONS)),
        device=config["device"],
    wildcard_constraints:
        run=pinned(INTERVENTION_RUNS),
    log:
        f"{LOGS}/interventions/{{run}}.log",
    benchmark:
        f"{BENCH}/interventions/{{run}}.tsv"
    threads: 1
    resources:
        mem_mb=by_attempt(3000),
        runtime=by_attempt(60),
        gpu=1,
    script:
        "../scripts/interventions_run.py"


rule interventions_stats:
    """Per run, which criteria it meets; per criterion and n_train, counts by regime and the tests."""
    input:
        **intervention_inputs(),
        manifests=expand(f"{RESULTS}/grok/runs/{{run}}/manifest.json", run=INTERVENTION_RUNS),
    output:
        stats=f"{RESULTS}/interventions/stats.csv",
        criteria=f"{RESULTS}/interventions/criteria.csv",
    params:
        interventions=INTERVENTIONS,
        runs=INTERVENTION_RUNS,
    log:
        f"{LOGS}/interventions/stats.log",
    benchmark:
        f"{BENCH}/interventions/stats.tsv"
    localrule: True
    script:
        "../scripts/interventions_stats.py"


rule interventions_figure:
    input:
        **intervention_inputs(),
        stats=rules.interventions_stats.output.stats,
        criteria=rules.interventions_stats.output.criteria,
    output:
        report(
            f"{RESULTS}/figures/interventions/{{fig}}.png",
            caption="../report/interventions/captions.rst",
            category="5. Interventions (grokking runs)",
        ),
        pdf=f"{RESULTS}/figures/interventions/{{fig}}.pdf",
    params:
        runs=INTERVENTION_RUNS,
    wildcard_constraints:
        fig=pinned(INTERVENTION_FIGURES),
    log:
        f"{LOGS}/figures/interventions/{{fig}}.log",
    benchmark:
        f"{BENCH}/figures/interventions/{{fig}}.tsv"
    localrule: True
    script:
        "../scripts/interventions_figure.py"
