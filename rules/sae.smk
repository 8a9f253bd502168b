# Experiment 2, second half (stage sae): three L1 trials of SAEs per (model, ckpt, layer), every
# token snapshot in SAELens's layout and the published sae_layer{LL}_{SNAPSHOT}.pt naming. One job
# per (model, ckpt, layer group) trains every trial of the group's layers from one pass over the
# activations: the lm stage's caches (sae.source: cache) or the LM forward itself (stream).
# With model.source synthetic, the cache is generated from a known dictionary (rule
# sae_synthetic_cache) and every SAE is also scored against it (rule sae_recovery).
from interplab.sae.export import saelens_usage
from interplab.sae.plan import SYNTHETIC_CKPT, sae_plan, synthetic_config

try:
    SAE = sae_plan(config)
except ValueError as error:
    raise WorkflowError(f"Invalid configuration. config: {error}") from None
SAE_LAYERS = [f"{layer:02d}" for layer in SAE.layers]
SAE_DIR = f"{RESULTS}/sae/{{trial}}/{{model}}/{{ckpt}}"
SAE_TRAINING_KEYS = [key for key in config["sae"] if key != "threads"]  # threads never change the numbers


def sae_outputs(trial, model, ckpt, layer):
    """Every file one training job writes (the snapshot folders, the .pt files, the log)."""
    base = f"{RESULTS}/sae/{trial}/{model}/{ckpt}"
    return {
        "cfg": [f"{base}/L{layer}/{s}/cfg.json" for s in SAE.snapshots],
        "weights": [f"{base}/L{layer}/{s}/sae_weights.safetensors" for s in SAE.snapshots],
        "pt": [f"{base}/sae_layer{layer}_{s}.pt" for s in SAE.snapshots],
        "log": f"{base}/L{layer}/training_log.csv",
    }


def sae_group_jobs(group):
    """(trial, layer) of every SAE one group job trains."""
    return [(trial, f"{layer:02d}") for trial in SAE.trials for layer in SAE.groups[group]]


def sae_group_outputs(group):
    """Every file one group job writes, per kind, over its trials × layers ({model}, {ckpt} wildcards)."""
    outputs = [sae_outputs(trial, "{model}", "{ckpt}", layer) for trial, layer in sae_group_jobs(group)]
    return {"cfg": [p for o in outputs for p in o["cfg"]], "weights": [p for o in outputs for p in o["weights"]],
            "pt": [p for o in outputs for p in o["pt"]], "log": [o["log"] for o in outputs]}


def sae_group_members(group):
    """What the job script needs per SAE: where its snapshots, .pt files, log and work dir go."""

    def members(wildcards):
        listed = []
        for trial, layer in sae_group_jobs(group):
            out = sae_outputs(trial, wildcards.model, wildcards.ckpt, layer)
            listed.append({"trial": trial, "layer": int(layer), "log": out["log"],
                           "snapshot_dirs": [str(Path(p).parent) for p in out["cfg"]], "pt": out["pt"],
                           "work_dir": f"{RESULTS}/sae/{trial}/{wildcards.model}/{wildcards.ckpt}/L{layer}/.train"})
        return listed

    return members


def sae_group_inputs(group):
    def inputs(wildcards):
        if SAE.source == "stream":
            return cache_inputs(wildcards)
        return {"cache": [cache_dir(wildcards.model, wildcards.ckpt, layer) for layer in SAE.groups[group]]}

    return inputs


def sae_stream_params():
    """The LM settings a streaming job's numbers depend on (None when the SAEs read caches)."""
    if SAE.source != "stream":
        return None
    return {"source": LM.source, "name": LM.name, "dtype": config["model"]["dtype"],
            "batch_size": config["model"]["batch_size"], "train_tokens": config["cache"]["train_tokens"]}


def sae_saelens_metadata(wildcards):
    """What an export's cfg.json tells SAELens about the model (exactly these values, so only a change
    to them reruns the job)."""
    return saelens_usage(config["model"], wildcards.ckpt)


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


# One rule per layer group (sae_train_L00_03, ...): a group's outputs span its layers, which a
# single wildcard pattern cannot express.
for _group in SAE.groups:

    rule:
        """Every trial × layer SAE of one layer group from one pass over the data; resumes after a kill."""
        name:
            f"sae_train_{_group}"
        input:
            unpack(sae_group_inputs(_group)),
        output:
            **sae_group_outputs(_group),
        params:
            sae={key: config["sae"][key] for key in SAE_TRAINING_KEYS},
            members=sae_group_members(_group),
            snapshots=list(SAE.snapshots),
            layers=list(SAE.groups[_group]),
            lm=sae_stream_params(),
            saelens=sae_saelens_metadata,
            device=config["device"],
        wildcard_constraints:
            model=pinned([SAE.model]),
            ckpt=pinned(SAE.ckpts),
        log:
            f"{LOGS}/sae/{{model}}/{{ckpt}}/{_group}.log",
        benchmark:
            f"{BENCH}/sae/{{model}}/{{ckpt}}/{_group}.tsv"
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
