# Experiment 2, second half (stage sae): three L1 trials of SAEs per (model, ckpt, layer), every
# token snapshot in SAELens's layout and the published sae_layer{LL}_{SNAPSHOT}.pt naming. One job
# per (model, ckpt, layer group) trains every trial of the group's layers from one pass over the
# activations: the lm stage's caches (sae.source: cache) or the LM forward itself (stream).
# With model.source synthetic, the cache is generated from a known dictionary (rule
# sae_synthetic_cache) and every SAE is also scored against it (rule sae_recovery).
register_targets("sae", sae_all_outputs())


# One rule per layer group (sae_train_L00_03, ...): a group's outputs span its layers, which a
# single wildcard pattern cannot express.
for _group in SAE.groups:

    rule:
        """Every trial × layer SAE of one layer group from one pass over the data; resumes after a kill."""
        name:
            f"sae_train_{_group}"
        input:
            unpack(sae_training_inputs(SAE.groups[_group])),
        output:
            **sae_group_outputs(_group),
        params:
            sae=SAE_TRAINING,
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
        priority: PRIORITY["sae"]
        threads: config["sae"]["threads"]
        resources:
            mem_mb=by_attempt(4000),
            runtime=by_attempt(240),
            gpu=1,
        conda:
            "../envs/lm.yaml"
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
        conda:
            "../envs/lm.yaml"
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
        conda:
            "../envs/lm.yaml"
        script:
            "../scripts/sae_recovery.py"
