"""Measure every snapshot of every trial's SAE at one layer on the held-out split of its activation
cache, in one pass; write each one's KD record and SAELens's sparsity.safetensors (log10 firing
frequency on those held-out tokens)."""
import logging

import torch

from interplab import kd
from interplab.activations import ActivationCache
from interplab.io import provenance, write_json
from interplab.progress import Progress
from interplab.runtime import resolve_device
from interplab.sae.export import load_sae, write_sparsity
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    w, p = sm.wildcards, sm.params
    device = resolve_device(p.device)
    heldout = ActivationCache(sm.input.cache, split="heldout")
    saes = {(m["trial"], m["snapshot"]): load_sae(m["dir"], device) for m in p.members}
    widths = None if p.student_widths == "auto" else p.student_widths
    progress = Progress(f"measuring {len(saes)} SAEs on {heldout.path}", heldout.n_tokens, "tokens")
    batches = progress.track(heldout.batches(p.batch_size, seed=0), size=len)
    measured = kd.measure_many(saes, batches, p.alive_threshold, widths, device)
    progress.finish()
    for (trial, name), weights, out, sparsity in zip(saes, sm.input.weights, sm.output.records, sm.output.sparsity,
                                                     strict=True):
        metrics = measured[trial, name]
        logging.info("trial %s snapshot %s: F alive %d (unique %d, dead %d), L0 %.2f, α %.4f, d*_S %.1f, MSE %.4g, "
                     "FVU %.4f", trial, name, metrics.f_alive, metrics.f_unique, metrics.dead, metrics.l0,
                     metrics.alpha, metrics.dstar, metrics.mse, metrics.fvu)
        rec = kd.record(metrics, trial=trial, model=w.model, ckpt=w.ckpt, layer=int(w.layer), snapshot=name,
                        tokens=p.snapshot_tokens[name])
        rec.update(p.truth or {})
        rec["provenance"] = provenance({"alive_threshold": p.alive_threshold, "student_widths": p.student_widths},
                                       inputs={"sae": weights})
        write_json(out, rec)
        write_sparsity(sparsity, torch.tensor(metrics.firing_frequency))
