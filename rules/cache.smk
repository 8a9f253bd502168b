# Experiment 2, first half (stage lm): residual-stream caches results/cache/{model}/{ckpt}/L{LL}/,
# one directory per layer (shards + manifest.json), read by interplab.activations.ActivationCache.
# With sae.source: stream the SAEs read the LM forward itself, so the job (then named
# heldout_cache) writes only the held-out split the KD measurement reads: no training cache.
if LM is not None:
    register_targets("lm", [cache_dir(LM.label, ckpt, layer) for ckpt in LM.revisions for layer in LM.layers])

    rule:
        """One forward pass per batch captures every requested layer's blocks.{L}.hook_resid_post."""
        name:
            "cache_build" if config["sae"]["source"] == "cache" else "heldout_cache"
        input:
            unpack(cache_inputs),
        output:
            [directory(cache_dir("{model}", "{ckpt}", layer)) for layer in LM.layers],
        params:
            source=LM.source,
            name=LM.name,
            layers=list(LM.layers),
            cache=config["cache"],
            splits=["train", "heldout"] if config["sae"]["source"] == "cache" else ["heldout"],
            dtype=config["model"]["dtype"],
            batch_size=config["model"]["batch_size"],
            device=config["device"],
        wildcard_constraints:
            model=pinned([LM.label]),
            ckpt=pinned(LM.revisions),
        log:
            f"{LOGS}/cache/{{model}}/{{ckpt}}.log",
        benchmark:
            f"{BENCH}/cache/{{model}}/{{ckpt}}.tsv"
        priority: PRIORITY["cache"]
        threads: 1  # one job per checkpoint: they run side by side instead of waiting for two free cores
        resources:
            mem_mb=by_attempt(8000),
            runtime=by_attempt(120),
            gpu=1,
        conda:
            "../envs/lm.yaml"
        script:
            "../scripts/cache_build.py"
