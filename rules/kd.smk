# Experiment 2, measurement and figures (stage sae): KD metrics of every SAE snapshot on held-out
# tokens, one table per trial, every figure variant per trial, and the three trials side by side.
from interplab.figures.sae import PER_TRIAL as SAE_FIGURES

KD = config["kd"]
KD_DIR = f"{RESULTS}/kd/{{trial}}/{{model}}/{{ckpt}}/L{{layer}}"


def kd_figures(trial):
    """The figure names chosen for a trial (kd.figures: all, or per trial a list or all)."""
    chosen = KD["figures"] if isinstance(KD["figures"], str) else KD["figures"].get(trial, "all")
    return list(SAE_FIGURES) if chosen == "all" else list(chosen)


def kd_snapshot_files(trial, model, ckpt, layer):
    return [f"{RESULTS}/kd/{trial}/{model}/{ckpt}/L{layer}/{s}.json" for s in SAE.snapshots]


def kd_sparsity_files(trial, model, ckpt, layer):
    """SAELens's sparsity.safetensors of every snapshot, measured on the same held-out tokens."""
    return [f"{RESULTS}/kd/{trial}/{model}/{ckpt}/L{layer}/{s}.sparsity.safetensors" for s in SAE.snapshots]


def kd_trial_records(wildcards):
    return [
        path
        for ckpt in SAE.ckpts
        for layer in SAE_LAYERS
        for path in kd_snapshot_files(wildcards.trial, SAE.model, ckpt, layer)
    ]


def kd_training_logs(wildcards):
    """Training logs of every layer at the primary checkpoint (the last revision studied)."""
    return [sae_outputs(wildcards.trial, SAE.model, SAE.ckpts[-1], layer)["log"] for layer in SAE_LAYERS]


def kd_sae_weights(wildcards):
    return sae_outputs(wildcards.trial, wildcards.model, wildcards.ckpt, wildcards.layer)["weights"]


def kd_ground_truth(wildcards):
    """The synthetic source's true F and α, to compare the measured ones against (None for a real LM)."""
    if not SAE.synthetic:
        return None
    truth = synthetic_config(config)
    return {"true_f": truth.n_features, "true_alpha": truth.alpha, "true_l0": truth.true_l0}


for _trial in SAE.trials:
    register_targets("kd", [f"{RESULTS}/kd/{_trial}/metrics.csv"])
    register_targets("kd", [f"{RESULTS}/figures/sae/{_trial}/{fig}.png" for fig in kd_figures(_trial)])
register_targets("kd", [f"{RESULTS}/figures/sae/compare_trials.png"])


rule kd_measure:
    """KD metrics and per-latent density of every snapshot of one SAE, in one pass over the held-out activations."""
    input:
        cache=sae_cache_input,
        weights=kd_sae_weights,
    output:
        records=[f"{KD_DIR}/{snapshot}.json" for snapshot in SAE.snapshots],
        sparsity=[f"{KD_DIR}/{snapshot}.sparsity.safetensors" for snapshot in SAE.snapshots],
    params:
        snapshots=list(SAE.snapshots),
        snapshot_dirs=sae_snapshot_dirs,
        snapshot_tokens=dict(SAE.snapshot_tokens),
        alive_threshold=KD["alive_threshold"],
        batch_size=KD["batch_size"],
        student_widths=KD["student_widths"],
        truth=kd_ground_truth,
        device=config["device"],
    wildcard_constraints:
        trial=pinned(SAE.trials),
        model=pinned([SAE.model]),
        ckpt=pinned(SAE.ckpts),
        layer=pinned(SAE_LAYERS),
    log:
        f"{LOGS}/kd/{{trial}}/{{model}}/{{ckpt}}/L{{layer}}.log",
    benchmark:
        f"{BENCH}/kd/{{trial}}/{{model}}/{{ckpt}}/L{{layer}}.tsv"
    threads: 1
    resources:
        mem_mb=by_attempt(4000),
        runtime=by_attempt(60),
        gpu=1,
    script:
        "../scripts/kd_measure.py"


rule kd_table:
    """One row per (model, ckpt, layer, snapshot) of a trial; predicted floors per student width."""
    input:
        kd_trial_records,
    output:
        metrics=f"{RESULTS}/kd/{{trial}}/metrics.csv",
        floors=f"{RESULTS}/kd/{{trial}}/floors.csv",
    wildcard_constraints:
        trial=pinned(SAE.trials),
    log:
        f"{LOGS}/kd/{{trial}}/table.log",
    benchmark:
        f"{BENCH}/kd/{{trial}}/table.tsv"
    localrule: True
    script:
        "../scripts/kd_table.py"


rule sae_figure:
    input:
        metrics=rules.kd_table.output.metrics,
        floors=rules.kd_table.output.floors,
        logs=kd_training_logs,
    output:
        report(
            f"{RESULTS}/figures/sae/{{trial}}/{{fig}}.png",
            caption="../report/sae/captions.rst",
            category="2. SAEs on the language model",
            subcategory="trial {trial}",
        ),
    params:
        primary_ckpt=SAE.ckpts[-1],
        layers=SAE_LAYERS,
    wildcard_constraints:
        trial=pinned(SAE.trials),
        fig=pinned(SAE_FIGURES),
    log:
        f"{LOGS}/figures/sae/{{trial}}/{{fig}}.log",
    benchmark:
        f"{BENCH}/figures/sae/{{trial}}/{{fig}}.tsv"
    localrule: True
    script:
        "../scripts/sae_figure.py"


rule sae_compare_trials:
    input:
        expand(f"{RESULTS}/kd/{{trial}}/metrics.csv", trial=SAE.trials),
    output:
        report(
            f"{RESULTS}/figures/sae/compare_trials.png",
            caption="../report/sae/compare_trials.rst",
            category="2. SAEs on the language model",
            subcategory="all trials",
        ),
    params:
        trials=list(SAE.trials),
        primary_ckpt=SAE.ckpts[-1],
    log:
        f"{LOGS}/figures/sae/compare_trials.log",
    benchmark:
        f"{BENCH}/figures/sae/compare_trials.tsv"
    localrule: True
    script:
        "../scripts/sae_compare.py"
