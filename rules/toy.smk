# Experiment 1: toy models of superposition against the KD minimum-width theorem.
register_targets("toy", [f"{RESULTS}/toy/summary.csv", f"{RESULTS}/toy/accuracy_by_alpha.csv"])
register_targets("toy", expand(f"{RESULTS}/figures/toy/{{fig}}.png", fig=TOY_FIGURES))


rule toy_run:
    """All student widths × seeds of one (F, α, d_T) configuration, trained as one tensor program."""
    output:
        f"{RESULTS}/toy/runs/{{run}}.parquet",
    params:
        toy=toy_run_params,
        device=config["device"],
    wildcard_constraints:
        run=pinned(TOY_RUNS),
    log:
        f"{LOGS}/toy/runs/{{run}}.log",
    benchmark:
        f"{BENCH}/toy/runs/{{run}}.tsv"
    threads: 1
    resources:
        mem_mb=by_attempt(2000),
        runtime=by_attempt(60),
    conda:
        "../envs/toy.yaml"
    script:
        "../scripts/toy_run.py"


rule toy_summary:
    """Per-width curves, capacity, per-α accuracy under every reading, and the per-configuration summary."""
    input:
        expand(f"{RESULTS}/toy/runs/{{run}}.parquet", run=TOY_RUNS),
    output:
        summary=report(
            f"{RESULTS}/toy/summary.csv",
            caption="../report/toy/summary.rst",
            category=REPORT["toy"],
            subcategory="result tables",
        ),
        curves=f"{RESULTS}/toy/curves.csv",
        seeds=f"{RESULTS}/toy/critical_widths.csv",
        accuracy=report(
            f"{RESULTS}/toy/accuracy_by_alpha.csv",
            caption="../report/toy/accuracy_by_alpha.rst",
            category=REPORT["toy"],
            subcategory="result tables",
        ),
        capacity_fit=f"{RESULTS}/toy/capacity_fit.csv",
        capacity=f"{RESULTS}/toy/capacity.csv",
    params:
        tolerance=config["toy"]["critical_tolerance"],
        tolerance_sweep=config["toy"]["critical_tolerance_sweep"],
    log:
        f"{LOGS}/toy/summary.log",
    benchmark:
        f"{BENCH}/toy/summary.tsv"
    localrule: True
    conda:
        "../envs/toy.yaml"
    script:
        "../scripts/toy_summary.py"


rule toy_figures:
    """Every Experiment 1 figure from the toy summary tables."""
    input:
        summary=rules.toy_summary.output.summary,
        curves=rules.toy_summary.output.curves,
        seeds=rules.toy_summary.output.seeds,
    output:
        **figure_outputs(f"{RESULTS}/figures/toy", TOY_FIGURES, "toy"),
    params:
        figures=list(TOY_FIGURES),
    log:
        f"{LOGS}/figures/toy/figures.log",
    benchmark:
        f"{BENCH}/figures/toy/figures.tsv"
    localrule: True
    conda:
        "../envs/toy.yaml"
    script:
        "../scripts/toy_figure.py"
