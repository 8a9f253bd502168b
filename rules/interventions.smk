# Interventions on the Camelyon17 grokking runs (docs/science.md §4): probes, subspace ablation, steering
# and neuron ablation per run, each with its control, then statistics across runs per regime.
# Part of stage grok; needs rules/grokking.smk (GROK, GROK_CAMELYON_RUNS, grok_data_input) included first.
register_targets("grok", [f"{RESULTS}/interventions/stats.csv"])
register_targets("grok", expand(f"{RESULTS}/figures/interventions/{{fig}}.png", fig=INTERVENTION_FIGURES))


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
    conda:
        "../envs/grok.yaml"
    script:
        "../scripts/interventions_run.py"


rule interventions_stats:
    """Per run, which criteria it meets; per criterion and n_train, counts by regime and the tests."""
    input:
        **intervention_inputs(),
        manifests=expand(f"{RESULTS}/grok/runs/{{run}}/manifest.json", run=INTERVENTION_RUNS),
    output:
        stats=report(
            f"{RESULTS}/interventions/stats.csv",
            caption="../report/interventions/stats_table.rst",
            category=REPORT["interventions"],
            subcategory="result tables",
        ),
        criteria=report(
            f"{RESULTS}/interventions/criteria.csv",
            caption="../report/interventions/criteria.rst",
            category=REPORT["interventions"],
            subcategory="result tables",
        ),
    params:
        interventions=INTERVENTIONS,
        runs=INTERVENTION_RUNS,
    log:
        f"{LOGS}/interventions/stats.log",
    benchmark:
        f"{BENCH}/interventions/stats.tsv"
    localrule: True
    conda:
        "../envs/grok.yaml"
    script:
        "../scripts/interventions_stats.py"


rule interventions_figures:
    """Every interventions figure from the per-run tables and the across-run statistics."""
    input:
        **intervention_inputs(),
        stats=rules.interventions_stats.output.stats,
        criteria=rules.interventions_stats.output.criteria,
    output:
        **figure_outputs(f"{RESULTS}/figures/interventions", INTERVENTION_FIGURES, "interventions"),
    params:
        runs=INTERVENTION_RUNS,
        figures=list(INTERVENTION_FIGURES),
    log:
        f"{LOGS}/figures/interventions/figures.log",
    benchmark:
        f"{BENCH}/figures/interventions/figures.tsv"
    localrule: True
    conda:
        "../envs/grok.yaml"
    script:
        "../scripts/interventions_figure.py"
