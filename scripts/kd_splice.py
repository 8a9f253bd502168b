"""CE loss recovered and KL of every SAE of one layer, spliced into the LM on held-out sequences."""
import logging
import time

from interplab.activations import ActivationCache
from interplab.io import provenance, write_json
from interplab.runtime import resolve_device
from interplab.sae.evaluate import first_sequences, splice_metrics, splice_record
from interplab.sae.export import load_sae
from interplab.teacher.bridge import BridgeSpec, checkpoint_inputs, load_bridge
from interplab.teacher.streams import load_streams
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    w, p = sm.wildcards, sm.params
    device = resolve_device(p.device)
    checkpoint = getattr(sm.input, "checkpoint", None)
    bridge = load_bridge(BridgeSpec.of_revision(p.source, p.name, w.ckpt, checkpoint, device, p.dtype))
    tokens = first_sequences(load_streams(sm.input.streams)["heldout"], p.splice_tokens)
    mean = ActivationCache(sm.input.cache, split="heldout").mean()  # the mean-ablation value
    saes = {(m["trial"], m["snapshot"]): load_sae(m["dir"], device) for m in p.members}
    start = time.perf_counter()
    measured = splice_metrics(bridge, tokens, int(w.layer), saes, mean, p.batch_size, device)
    logging.info("L%s: %d SAEs spliced over %d tokens in %.1fs", w.layer, len(saes), tokens.numel(),
                 time.perf_counter() - start)
    inputs = {"streams": sm.input.streams, "cache": f"{sm.input.cache}/manifest.json", **checkpoint_inputs(checkpoint)}
    for member, out in zip(p.members, sm.output):
        key = (member["trial"], member["snapshot"])
        rec = splice_record(measured[key], trial=member["trial"], model=w.model, ckpt=w.ckpt, layer=int(w.layer),
                            snapshot=member["snapshot"], tokens=p.snapshot_tokens[member["snapshot"]])
        rec["provenance"] = provenance({"splice_tokens": p.splice_tokens, "batch_size": p.batch_size},
                                       inputs={**inputs, "sae": f"{member['dir']}/sae_weights.safetensors"})
        write_json(out, rec)
