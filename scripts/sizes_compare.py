"""Measure every dictionary size on the layer's held-out tokens and compare the sizes (seed 003)."""
import logging
from pathlib import Path

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
    # results/sizes/…/x{E}/final/sae_weights.safetensors: the dictionary's name is the folder above final/
    names = {Path(weights).parents[1].name: weights for weights in sm.input.weights}
    saes = {name: load_sae(Path(weights).parent, device) for name, weights in names.items()}
    progress = Progress(f"measuring {len(saes)} dictionary sizes on {heldout.path}", heldout.n_tokens, "tokens")
    measured = kd.measure_many(saes, progress.track(heldout.batches(p.batch_size, seed=0), size=len),
                               p.alive_threshold, device=device)
    progress.finish()
    sizes, features = compare_sizes({saes[n].W_dec.shape[0]: saes[n].W_dec.detach().cpu() for n in saes},
                                    {saes[n].W_dec.shape[0]: torch.from_numpy(measured[n].alive()) for n in saes},
                                    p.seed)
    by_size = {saes[n].W_dec.shape[0]: n for n in saes}
    sizes.insert(0, "dictionary", [by_size[size] for size in sizes["size"]])
    for column in ["l0", "alpha", "f_alive", "f_unique", "dead", "dense", "mse", "fvu", "explained_variance",
                   "n_tokens"]:
        sizes[column] = [getattr(measured[name], column) for name in sizes["dictionary"]]
    for row in sizes.itertuples():
        logging.info("%s (F %d): L0 %.1f, alive %d, MMCS-with-larger %.3f (alive %.3f, random %.3f), %d matched, "
                     "bimodality %.3f, effective dims %.1f (random %.1f)", row.dictionary, row.size, row.l0,
                     row.f_alive, row.mmcs_with_larger, row.mmcs_alive, row.random_mmcs, row.n_matched,
                     row.bimodality, row.effective_dims, row.random_effective_dims)
    prov = provenance({"alive_threshold": p.alive_threshold, "seed": p.seed},
                      inputs={"cache": f"{heldout.path}/manifest.json", **names})
    write_table(sm.output.sizes, sizes, prov)
    write_table(sm.output.features, features, prov)
