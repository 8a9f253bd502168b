# Seed 003's replication (stage sizes): SAEs of several dictionary sizes on one layer of the primary
# checkpoint with one λ (L1 summed over latents), then MMCS-with-larger, the MCS histograms against a
# random-direction baseline and each feature's sparsity in the neuron basis.
SIZES_FIGURES = ("mmcs_vs_size", "mcs_histograms", "neuron_basis")
SIZES_TABLES = SIZES_DIR.format(model=SAE.model, ckpt=SAE.ckpts[-1])
register_targets("sizes", [f"{SIZES_TABLES}/sizes.csv"])
register_targets("sizes", [f"{RESULTS}/figures/sizes/{fig}.png" for fig in SIZES_FIGURES])


rule sizes_train:
    """Every dictionary size from one pass over the layer's activations (the sae stage's trainer)."""
    input:
        unpack(sae_training_inputs([SIZES.layer])),
    output:
        **sizes_outputs("{model}", "{ckpt}"),
    params:
        sae=SIZES_SAE,
        members=sizes_members,
        snapshots=["final"],
        layers=[SIZES.layer],
        lm=sae_stream_params(),
        saelens=sae_saelens_metadata,
        device=config["device"],
    wildcard_constraints:
        model=pinned([SAE.model]),
        ckpt=pinned([SAE.ckpts[-1]]),
    log:
        f"{LOGS}/sizes/{{model}}/{{ckpt}}/train.log",
    benchmark:
        f"{BENCH}/sizes/{{model}}/{{ckpt}}/train.tsv"
    threads: config["sae"]["threads"]
    resources:
        mem_mb=by_attempt(4000),
        runtime=by_attempt(240),
        gpu=1,
    conda:
        "../envs/lm.yaml"
    script:
        "../scripts/sae_train.py"


rule sizes_compare:
    """KD metrics of every size on held-out tokens, MMCS-with-larger and neuron-basis sparsity."""
    input:
        cache=lambda wc: cache_dir(wc.model, wc.ckpt, SIZES.layer),
        weights=lambda wc: sizes_outputs(wc.model, wc.ckpt)["weights"],
    output:
        sizes=report(
            f"{SIZES_DIR}/sizes.csv",
            caption="../report/sizes/sizes.rst",
            category=REPORT["sizes"],
        ),
        features=f"{SIZES_DIR}/features.csv",
    params:
        alive_threshold=KD["alive_threshold"],
        batch_size=KD["batch_size"],
        seed=SIZES.seed,
        device=config["device"],
    wildcard_constraints:
        model=pinned([SAE.model]),
        ckpt=pinned([SAE.ckpts[-1]]),
    log:
        f"{LOGS}/sizes/{{model}}/{{ckpt}}/compare.log",
    benchmark:
        f"{BENCH}/sizes/{{model}}/{{ckpt}}/compare.tsv"
    threads: 1
    resources:
        mem_mb=by_attempt(4000),
        runtime=by_attempt(60),
    conda:
        "../envs/lm.yaml"
    script:
        "../scripts/sizes_compare.py"


rule sizes_figures:
    """MMCS-with-larger against size, the MCS histograms and the neuron-basis sparsity."""
    input:
        sizes=f"{SIZES_TABLES}/sizes.csv",
        features=f"{SIZES_TABLES}/features.csv",
    output:
        **figure_outputs(f"{RESULTS}/figures/sizes", SIZES_FIGURES, "sizes"),
    params:
        figures=list(SIZES_FIGURES),
        layer=SIZES.layer,
    log:
        f"{LOGS}/figures/sizes/figures.log",
    benchmark:
        f"{BENCH}/figures/sizes/figures.tsv"
    localrule: True
    conda:
        "../envs/lm.yaml"
    script:
        "../scripts/sizes_figure.py"
