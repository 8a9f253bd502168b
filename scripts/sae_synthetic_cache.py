"""Write the synthetic activation source as an activation cache, ground truth beside the shards."""
from interplab.io import provenance
from interplab.synthetic import SyntheticConfig, write_cache
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    cfg, cache = SyntheticConfig(**sm.params.synthetic), sm.params.cache
    prov = provenance({"synthetic": sm.params.synthetic, "cache": cache})
    write_cache(cfg, sm.output[0], sm.wildcards.model,
                {"train": cache["train_tokens"], "heldout": cache["heldout_tokens"]},
                cache["dtype"], cache["shard_tokens"], prov)
