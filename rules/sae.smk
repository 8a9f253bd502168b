# Experiment 2, second half (stage sae): three L1 trials of SAEs per cached (model, ckpt, layer),
# every token snapshot in SAELens's layout and the published sae_layer{LL}_{SNAPSHOT}.pt naming.
# With model.source synthetic, the cache is generated from a known dictionary (rule
# sae_synthetic_cache) and every SAE is also scored against it (rule sae_recovery).
from interplab.sae.plan import SYNTHETIC_CKPT, sae_plan, synthetic_config

try:
    SAE = sae_plan(config)
except ValueError as error:
    raise WorkflowError(f"Invalid configuration. config: {error}") from None
SAE_LAYERS = [f"{layer:02d}" for layer in SAE.layers]
SAE_DIR = f"{RESULTS}/sae/{{trial}}/{{model}}/{{ckpt}}"


def sae_outputs(trial, model, ckpt, layer):
    """Every file one training job writes (the snapshot folders, the .pt files, the log)."""
    base = f"{RESULTS}/sae/{trial}/{model}/{ckpt}"
    return {
        "cfg": [f"{base}/L{layer}/{s}/cfg.json" for s in SAE.snapshots],
        "weights": [f"{base}/L{layer}/{s}/sae_weights.safetensors" for s in SAE.snapshots],
        "pt": [f"{base}/sae_layer{layer}_{s}.pt" for s in SAE.snapshots],
        "log": f"{base}/L{layer}/training_log.csv",
    }


def sae_trial_params(wildcards):
    """The sae settings one trial's job depends on: its own L1 policy and the shared training keys,
    never another trial's entry or the thread count (neither changes its numbers)."""
    shared = {key: value for key, value in config["sae"].items() if key not in ("trials", "threads")}
    return {**shared, "trials": {wildcards.trial: config["sae"]["trials"][wildcards.trial]}}


def sae_cache_input(wildcards):
    return cache_dir(wildcards.model, wildcards.ckpt, int(wildcards.layer))


def sae_snapshot_dirs(wildcards):
    return [str(Path(p).parent) for p in sae_outputs(wildcards.trial, wildcards.model, wildcards.ckpt, wildcards.layer)["cfg"]]


def sae_all_outputs():
    jobs = [(t, SAE.model, c, layer) for t in SAE.trials for c in SAE.ckpts for layer in SAE_LAYERS]
    paths = [p for job in jobs for part in sae_outputs(*job).values() for p in ([part] if isinstance(part, str) else part)]
    if SAE.synthetic:
        paths += [f"{RESULTS}/sae/{t}/{m}/{c}/L{layer}/recovery.csv" for t, m, c, layer in jobs]
    return paths


register_targets("sae", sae_all_outputs())


rule sae_train:
    """One SAE per (trial, model, ckpt, layer); resumes from its last snapshot after a kill."""
    input:
        cache=sae_cache_input,
    output:
        **sae_outputs("{trial}", "{model}", "{ckpt}", "{layer}"),
    params:
        sae=sae_trial_params,
        snapshots=list(SAE.snapshots),
        work_dir=f"{SAE_DIR}/L{{layer}}/.train",
        device=config["device"],
    wildcard_constraints:
        trial=pinned(SAE.trials),
        model=pinned([SAE.model]),
        ckpt=pinned(SAE.ckpts),
        layer=pinned(SAE_LAYERS),
    log:
        f"{LOGS}/sae/{{trial}}/{{model}}/{{ckpt}}/L{{layer}}.log",
    benchmark:
        f"{BENCH}/sae/{{trial}}/{{model}}/{{ckpt}}/L{{layer}}.tsv"
    threads: config["sae"]["threads"]
    resources:
        mem_mb=by_attempt(4000),
        runtime=by_attempt(240),
        gpu=1,
    script:
        "../scripts/sae_train.py"


if SAE.synthetic:

    rule sae_synthetic_cache:
        """Activations from a known dictionary, in the activation-cache format, ground truth beside them."""
        output:
            directory(cache_dir("{model}", SYNTHETIC_CKPT, 0)),
        params:
            synthetic=as_params(synthetic_config(config)),
            cache=config["cache"],
        wildcard_constraints:
            model=pinned([SAE.model]),
        log:
            f"{LOGS}/cache/{{model}}/synthetic.log",
        benchmark:
            f"{BENCH}/cache/{{model}}/synthetic.tsv"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        script:
            "../scripts/sae_synthetic_cache.py"

    rule sae_recovery:
        """Mean max cosine similarity of every snapshot's decoder to the true dictionary."""
        input:
            cache=sae_cache_input,
            weights=lambda wc: sae_outputs(wc.trial, wc.model, wc.ckpt, wc.layer)["weights"],
        output:
            f"{SAE_DIR}/L{{layer}}/recovery.csv",
        params:
            snapshots=list(SAE.snapshots),
            snapshot_dirs=sae_snapshot_dirs,
        wildcard_constraints:
            trial=pinned(SAE.trials),
            model=pinned([SAE.model]),
            ckpt=pinned(SAE.ckpts),
            layer=pinned(SAE_LAYERS),
        log:
            f"{LOGS}/sae/{{trial}}/{{model}}/{{ckpt}}/L{{layer}}_recovery.log",
        benchmark:
            f"{BENCH}/sae/{{trial}}/{{model}}/{{ckpt}}/L{{layer}}_recovery.tsv"
        localrule: True
        script:
            "../scripts/sae_recovery.py"
