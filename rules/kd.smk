# Experiment 2, measurement and figures (stage sae): KD metrics of every SAE snapshot on held-out
# tokens, one table per trial, every figure variant per trial, and the three trials side by side.
for _trial in SAE.trials:
    register_targets("kd", [f"{RESULTS}/kd/{_trial}/metrics.csv"])
    register_targets("kd", [f"{RESULTS}/figures/sae/{_trial}/{fig}.png" for fig in kd_figures(_trial)])
register_targets("kd", [f"{RESULTS}/figures/sae/compare_trials.png", f"{RESULTS}/figures/sae/evaluation_pareto.png"])
if LM is not None:
    register_targets("kd", [f"{RESULTS}/features/{trial}/index.html" for trial in SAE.trials])
if len(SAE.ckpts) > 1:
    register_targets("kd", [f"{RESULTS}/figures/sae/{trial}/checkpoint_dynamics.png" for trial in SAE.trials])


rule kd_measure:
    """KD metrics and per-latent density of every snapshot of every trial's SAE at one layer, in one
    pass over the held-out activations (a layer group trains all trials together, so nothing is lost
    by measuring them together)."""
    input:
        cache=sae_cache_input,
        weights=kd_layer_weights,
    output:
        records=[path for trial in SAE.trials for path in kd_snapshot_files(trial, "{model}", "{ckpt}", "{layer}")],
        sparsity=[path for trial in SAE.trials for path in kd_sparsity_files(trial, "{model}", "{ckpt}", "{layer}")],
    params:
        members=kd_layer_members,
        snapshot_tokens=dict(SAE.snapshot_tokens),
        alive_threshold=KD["alive_threshold"],
        batch_size=KD["batch_size"],
        student_widths=KD["student_widths"],
        truth=kd_ground_truth(),
        device=config["device"],
    wildcard_constraints:
        model=pinned([SAE.model]),
        ckpt=pinned(SAE.ckpts),
        layer=pinned(SAE_LAYERS),
    log:
        f"{LOGS}/kd/{{model}}/{{ckpt}}/L{{layer}}.log",
    benchmark:
        f"{BENCH}/kd/{{model}}/{{ckpt}}/L{{layer}}.tsv"
    priority: PRIORITY["kd"]
    threads: 1
    resources:
        mem_mb=by_attempt(4000),
        runtime=by_attempt(60),
        gpu=1,
    conda:
        "../envs/lm.yaml"
    script:
        "../scripts/kd_measure.py"


if KD_SPLICE:

    rule kd_splice:
        """CE loss recovered and KL with every SAE of one layer (all trials, all snapshots) spliced into
        the LM, one forward per batch of held-out sequences (interplab.sae.evaluate)."""
        input:
            unpack(kd_splice_inputs),
        output:
            [path for trial in SAE.trials for path in kd_splice_files(trial, "{model}", "{ckpt}", "{layer}")],
        params:
            members=kd_layer_members,
            source=LM.source,
            name=LM.name,
            dtype=config["model"]["dtype"],
            splice_tokens=KD["splice_tokens"],
            batch_size=KD["splice_batch_size"],
            snapshot_tokens=dict(SAE.snapshot_tokens),
            device=config["device"],
        wildcard_constraints:
            model=pinned([SAE.model]),
            ckpt=pinned(SAE.ckpts),
            layer=pinned(SAE_LAYERS),
        log:
            f"{LOGS}/kd/splice/{{model}}/{{ckpt}}/L{{layer}}.log",
        benchmark:
            f"{BENCH}/kd/splice/{{model}}/{{ckpt}}/L{{layer}}.tsv"
        priority: PRIORITY["kd"]
        threads: 1
        resources:
            mem_mb=by_attempt(4000),
            runtime=by_attempt(60),
            gpu=1,
        conda:
            "../envs/lm.yaml"
        script:
            "../scripts/kd_splice.py"


rule kd_table:
    """One row per (model, ckpt, layer, snapshot) of a trial, with the splice metrics where an LM was
    spliced (NaN otherwise); predicted floors per student width; the feature-density histogram."""
    input:
        records=kd_trial_records,
        splice=kd_trial_splice_records,
    output:
        metrics=report(
            f"{RESULTS}/kd/{{trial}}/metrics.csv",
            caption="../report/sae/metrics.rst",
            category=REPORT["sae"],
            subcategory="trial {trial}",
        ),
        floors=f"{RESULTS}/kd/{{trial}}/floors.csv",
        density=f"{RESULTS}/kd/{{trial}}/density.csv",
    wildcard_constraints:
        trial=pinned(SAE.trials),
    log:
        f"{LOGS}/kd/{{trial}}/table.log",
    benchmark:
        f"{BENCH}/kd/{{trial}}/table.tsv"
    localrule: True
    conda:
        "../envs/lm.yaml"
    script:
        "../scripts/kd_table.py"


# One job draws every chosen figure of a trial: Python and matplotlib start once, not per figure.
# One rule per trial (sae_figures_A, ...), since the chosen figures (kd.figures) may differ by trial.
for _trial in SAE.trials:

    rule:
        """Every chosen per-trial figure of one trial from its KD tables and training logs."""
        name:
            f"sae_figures_{_trial}"
        input:
            metrics=f"{RESULTS}/kd/{_trial}/metrics.csv",
            floors=f"{RESULTS}/kd/{_trial}/floors.csv",
            logs=kd_training_logs(_trial),
        output:
            **figure_outputs(f"{RESULTS}/figures/sae/{_trial}", kd_figures(_trial), "sae", f"trial {_trial}"),
        params:
            trial=_trial,
            figures=kd_figures(_trial),
            primary_ckpt=SAE.ckpts[-1],
            layers=SAE_LAYERS,
        log:
            f"{LOGS}/figures/sae/{_trial}/figures.log",
        benchmark:
            f"{BENCH}/figures/sae/{_trial}/figures.tsv"
        localrule: True
        conda:
            "../envs/lm.yaml"
        script:
            "../scripts/sae_figure.py"


rule sae_compare_trials:
    input:
        expand(f"{RESULTS}/kd/{{trial}}/metrics.csv", trial=SAE.trials),
    output:
        report(
            f"{RESULTS}/figures/sae/compare_trials.png",
            caption="../report/sae/compare_trials.rst",
            category=REPORT["sae"],
            subcategory="all trials",
        ),
        pdf=f"{RESULTS}/figures/sae/compare_trials.pdf",
    params:
        trials=list(SAE.trials),
        primary_ckpt=SAE.ckpts[-1],
        target_l0={trial: policy.adaptive.target_l0 for trial, policy in SAE.trials.items() if policy.adaptive},
    log:
        f"{LOGS}/figures/sae/compare_trials.log",
    benchmark:
        f"{BENCH}/figures/sae/compare_trials.tsv"
    localrule: True
    conda:
        "../envs/lm.yaml"
    script:
        "../scripts/sae_compare.py"


rule sae_dynamics_figure:
    """With two or more teacher checkpoints: each trial's final-snapshot metrics against the step."""
    input:
        rules.kd_table.output.metrics,
    output:
        png=report(
            f"{RESULTS}/figures/sae/{{trial}}/checkpoint_dynamics.png",
            caption="../report/sae/checkpoint_dynamics.rst",
            category=REPORT["sae"],
            subcategory="trial {trial}",
        ),
        pdf=f"{RESULTS}/figures/sae/{{trial}}/checkpoint_dynamics.pdf",
    params:
        steps=kd_checkpoint_steps(),
    wildcard_constraints:
        trial=pinned(SAE.trials),
    log:
        f"{LOGS}/figures/sae/{{trial}}/checkpoint_dynamics.log",
    benchmark:
        f"{BENCH}/figures/sae/{{trial}}/checkpoint_dynamics.tsv"
    localrule: True
    conda:
        "../envs/lm.yaml"
    script:
        "../scripts/sae_dynamics_figure.py"


rule sae_evaluation_figure:
    """L0 against FVU and against CE loss recovered, every trial and snapshot at the primary checkpoint."""
    input:
        expand(f"{RESULTS}/kd/{{trial}}/metrics.csv", trial=SAE.trials),
    output:
        png=report(
            f"{RESULTS}/figures/sae/evaluation_pareto.png",
            caption="../report/sae/evaluation_pareto.rst",
            category=REPORT["sae"],
            subcategory="all trials",
        ),
        pdf=f"{RESULTS}/figures/sae/evaluation_pareto.pdf",
    params:
        trials=list(SAE.trials),
        primary_ckpt=SAE.ckpts[-1],
    log:
        f"{LOGS}/figures/sae/evaluation_pareto.log",
    benchmark:
        f"{BENCH}/figures/sae/evaluation_pareto.tsv"
    localrule: True
    conda:
        "../envs/lm.yaml"
    script:
        "../scripts/sae_evaluation_figure.py"


if LM is not None:

    rule sae_contexts:
        """Max-activating held-out contexts of chosen latents of every final SAE of a trial, and its browser."""
        input:
            unpack(kd_contexts_inputs),
        output:
            records=[f"{RESULTS}/features/{{trial}}/L{layer}.json" for layer in SAE_LAYERS],
            browser=report(
                f"{RESULTS}/features/{{trial}}/index.html",
                caption="../report/sae/features.rst",
                category=REPORT["sae"],
                subcategory="trial {trial}",
            ),
        params:
            contexts=KD["contexts"],
            layers=list(SAE.layers),
            source=LM.source,
            name=LM.name,
            model_name=saelens_usage(config["model"], SAE.ckpts[-1])["model_name"],
            ckpt=SAE.ckpts[-1],
        wildcard_constraints:
            trial=pinned(SAE.trials),
        log:
            f"{LOGS}/features/{{trial}}.log",
        benchmark:
            f"{BENCH}/features/{{trial}}.tsv"
        threads: 1
        resources:
            mem_mb=by_attempt(4000),
            runtime=by_attempt(60),
        conda:
            "../envs/lm.yaml"
        script:
            "../scripts/sae_contexts.py"
