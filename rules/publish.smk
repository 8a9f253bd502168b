# Publishing (stage publish): per trial, the folder users download from the Hugging Face hub
# (sae_layer{LL}_{SNAPSHOT}.pt, SAELens folders with sparsity, pretrained_saes.yaml, KD metrics,
# model card), uploaded when a repo id
# (publish.repo_ids) and a token (the variable publish.token_env names) are both set.
for _trial in SAE.trials:
    register_targets("publish", [f"{RESULTS}/publish/{_trial}/status.json"])


rule publish_trial:
    """Assemble one trial's hub folder; upload it only when a repo id and a token are configured."""
    input:
        unpack(publish_inputs),
    output:
        folder=directory(f"{RESULTS}/publish/{{trial}}/hub"),
        status=f"{RESULTS}/publish/{{trial}}/status.json",
    params:
        card=publish_card_facts,
        layers=list(SAE.layers),
        snapshots=list(SAE.snapshots),
        repo_id=publish_repo_id,
        token_env=PUBLISH["token_env"],
    wildcard_constraints:
        trial=pinned(SAE.trials),
    log:
        f"{LOGS}/publish/{{trial}}.log",
    benchmark:
        f"{BENCH}/publish/{{trial}}.tsv"
    localrule: True
    conda:
        "../envs/lm.yaml"
    script:
        "../scripts/publish_trial.py"
