"""Measure every snapshot of one SAE on the held-out split of its activation cache; write its
KD record and SAELens's sparsity.safetensors (log10 firing frequency on those held-out tokens)."""
import torch

from interplab import kd
from interplab.activations import ActivationCache
from interplab.io import provenance, write_json
from interplab.runtime import resolve_device
from interplab.sae.export import load_sae, write_sparsity
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    w, p = sm.wildcards, sm.params
    device = resolve_device(p.device)
    heldout = ActivationCache(sm.input.cache, split="heldout")
    saes = {name: load_sae(folder, device) for name, folder in zip(p.snapshots, p.snapshot_dirs)}
    widths = None if p.student_widths == "auto" else p.student_widths
    measured = kd.measure_many(saes, heldout.batches(p.batch_size, seed=0), p.alive_threshold, widths, device)
    for (name, metrics), out, sparsity in zip(measured.items(), sm.output.records, sm.output.sparsity):
        rec = kd.record(metrics, trial=w.trial, model=w.model, ckpt=w.ckpt, layer=int(w.layer), snapshot=name,
                        tokens=p.snapshot_tokens[name])
        rec.update(p.truth or {})
        rec["provenance"] = provenance({"alive_threshold": p.alive_threshold, "student_widths": p.student_widths},
                                       inputs={"sae": f"{sm.input.weights[p.snapshots.index(name)]}"})
        write_json(out, rec)
        write_sparsity(sparsity, torch.tensor(metrics.density))
