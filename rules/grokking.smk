# Grokking for under-sampled Camelyon17 (docs/science.md §4): the synthetic WILDS-layout fixture,
# ResNet-18 runs in two regimes, the modular-addition positive control, the summary and figures.
register_targets("grok", [f"{RESULTS}/grok/summary.csv"])
register_targets("grok", expand(f"{RESULTS}/figures/grok/{{fig}}.png", fig=GROK_FIGURES))


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
    conda:
        "../envs/grok.yaml"
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
    conda:
        "../envs/grok.yaml"
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
    conda:
        "../envs/grok.yaml"
    script:
        "../scripts/grok_train.py"


rule grok_summary:
    """Per run: peak OOD epoch, peak and final OOD accuracy, grokked / ungrokked / neither."""
    input:
        expand(f"{RESULTS}/grok/runs/{{run}}/manifest.json", run=GROK_RUNS),
    output:
        report(
            f"{RESULTS}/grok/summary.csv",
            caption="../report/grok/summary.rst",
            category=REPORT["grok"],
            subcategory="result tables",
        ),
    params:
        criteria=GROK["classification"],
    log:
        f"{LOGS}/grok/summary.log",
    benchmark:
        f"{BENCH}/grok/summary.tsv"
    localrule: True
    conda:
        "../envs/grok.yaml"
    script:
        "../scripts/grok_summary.py"


rule grok_figures:
    """Every grokking-stage figure from the run histories and the summary."""
    input:
        summary=rules.grok_summary.output[0],
        manifests=expand(f"{RESULTS}/grok/runs/{{run}}/manifest.json", run=GROK_RUNS),
    output:
        **figure_outputs(f"{RESULTS}/figures/grok", GROK_FIGURES, "grok"),
    params:
        figures=list(GROK_FIGURES),
    log:
        f"{LOGS}/figures/grok/figures.log",
    benchmark:
        f"{BENCH}/figures/grok/figures.tsv"
    localrule: True
    conda:
        "../envs/grok.yaml"
    script:
        "../scripts/grok_figure.py"
