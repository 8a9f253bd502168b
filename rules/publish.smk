# Publishing (stage publish): per trial, the folder users download from the Hugging Face hub
# (sae_layer{LL}_{SNAPSHOT}.pt, SAELens folders with sparsity, pretrained_saes.yaml, KD metrics,
# model card), uploaded when a repo id
# (publish.repo_ids) and a token (the variable publish.token_env names) are both set.
PUBLISH = config["publish"]

for _trial in SAE.trials:
    register_targets("publish", [f"{RESULTS}/publish/{_trial}/status.json"])


def publish_inputs(wildcards):
    """Every snapshot of every layer of the trial at the primary checkpoint (weights, .pt, held-out
    sparsity), and the trial's KD table."""
    outputs = [sae_outputs(wildcards.trial, SAE.model, SAE.ckpts[-1], layer) for layer in SAE_LAYERS]
    return {
        "weights": [p for o in outputs for p in o["weights"]],
        "pt": [p for o in outputs for p in o["pt"]],
        "sparsity": [p for layer in SAE_LAYERS for p in kd_sparsity_files(wildcards.trial, SAE.model, SAE.ckpts[-1], layer)],
        "metrics": f"{RESULTS}/kd/{wildcards.trial}/metrics.csv",
    }


def publish_card_facts(wildcards):
    """What the card states; base_model and the dataset only when they are hub ids (model/corpus source hf)."""
    sae = config["sae"]
    usage = saelens_usage(config["model"], SAE.ckpts[-1])
    trial = sae["trials"][wildcards.trial]
    adaptive = trial["adaptive"]
    policy = (f"adaptive λ from {trial['l1_coefficient']:g} ({trial['l1_form']} form), target L0 "
              f"{adaptive['target_l0']}, rate {adaptive['rate']:g}") if adaptive else \
             f"fixed λ = {trial['l1_coefficient']:g} ({trial['l1_form']} form)"
    return {
        "trial": wildcards.trial,
        "model_name": usage["model_name"],
        "base_model": usage["model_name"] if config["model"]["source"] == "hf" else None,
        "dataset": usage["dataset_path"],
        "revision": SAE.ckpts[-1],
        "hook": "blocks.{L}.hook_resid_post",
        "layers": list(SAE.layers),
        "l1_policy": policy,
        "training_tokens": sae["training_tokens"],
        "snapshots": list(SAE.snapshots),
    }


def publish_repo_id(wildcards):
    return PUBLISH["repo_ids"].get(wildcards.trial)


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
    script:
        "../scripts/publish_trial.py"
