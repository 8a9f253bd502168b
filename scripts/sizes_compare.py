"""Measure every dictionary size on the layer's held-out tokens and compare the sizes (seed 003)."""
import logging

import torch

from interplab import kd
from interplab.activations import ActivationCache
from interplab.io import provenance, write_table
from interplab.progress import Progress
from interplab.runtime import resolve_device
from interplab.sae.export import load_sae
from interplab.sae.sizes import compare_sizes
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    p = sm.params
    device = resolve_device(p.device)
    heldout = ActivationCache(sm.input.cache, split="heldout")
    saes = {name: load_sae(folder, device) for name, folder in p.sizes.items()}
    progress = Progress(f"measuring {len(saes)} dictionary sizes on {heldout.path}", heldout.n_tokens, "tokens")
    measured = kd.measure_many(saes, progress.track(heldout.batches(p.batch_size, seed=0), size=len),
                               p.alive_threshold, device=device)
    progress.finish()
    by_size = {sae.W_dec.shape[0]: (name, sae, measured[name]) for name, sae in saes.items()}
    sizes, features = compare_sizes(
        {size: sae.W_dec.detach().cpu() for size, (_, sae, _) in by_size.items()},
        {size: torch.tensor(m.firing_frequency) > p.alive_threshold for size, (_, _, m) in by_size.items()}, p.seed)
    kd_columns = ["l0", "alpha", "f_alive", "f_unique", "dead", "dense", "mse", "fvu", "explained_variance", "n_tokens"]
    for column in kd_columns:
        sizes[column] = [getattr(by_size[size][2], column) for size in sizes["size"]]
    sizes.insert(0, "dictionary", [by_size[size][0] for size in sizes["size"]])
    for row in sizes.itertuples():
        logging.info("%s (F %d): L0 %.1f, alive %d, MMCS-with-larger %.3f (alive %.3f, random %.3f), %d matched, "
                     "bimodality %.3f, effective dims %.1f (random %.1f)", row.dictionary, row.size, row.l0,
                     row.f_alive, row.mmcs_with_larger, row.mmcs_alive, row.random_mmcs, row.n_matched,
                     row.bimodality, row.effective_dims, row.random_effective_dims)
    prov = provenance({"alive_threshold": p.alive_threshold, "seed": p.seed},
                      inputs={"cache": f"{heldout.path}/manifest.json",
                              **{name: f"{folder}/sae_weights.safetensors" for name, folder in p.sizes.items()}})
    write_table(sm.output.sizes, sizes, prov)
    write_table(sm.output.features, features, prov)
