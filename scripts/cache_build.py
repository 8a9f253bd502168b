"""Cache every requested layer's resid_post for one model revision: one forward per batch."""
from interplab.activations import CacheSpec, build_caches
from interplab.io import provenance, read_json
from interplab.runtime import resolve_device
from interplab.teacher.bridge import LOADER, BridgeSpec, checkpoint_inputs, load_bridge
from interplab.teacher.streams import load_streams, take_tokens
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    p, ckpt, model = sm.params, sm.wildcards.ckpt, sm.wildcards.model
    cache, layers = p.cache, tuple(p.layers)
    device = resolve_device(p.device)
    checkpoint = getattr(sm.input, "checkpoint", None)
    bridge = load_bridge(BridgeSpec.of_revision(p.source, p.name, ckpt, checkpoint, device, p.dtype))
    rows = load_streams(sm.input.streams)
    streams = {split: take_tokens(rows[split], cache[f"{split}_tokens"], split) if split in p.splits
               else rows[split][:0] for split in rows}  # a split not cached is written empty
    spec = CacheSpec(model=model, revision=ckpt, source=p.source, layers=layers, dtype=cache["dtype"],
                     shard_tokens=cache["shard_tokens"], batch_size=p.batch_size, loader=LOADER)
    inputs = {"streams": sm.input.streams, **checkpoint_inputs(checkpoint)}
    prov = provenance({"cache": cache, "splits": list(p.splits), "model": p.name, "revision": ckpt, "layers": list(layers),
                       "model_dtype": p.dtype, "batch_size": p.batch_size}, inputs=inputs)
    build_caches(bridge, streams, spec, dict(zip(layers, sm.output)), read_json(sm.input.record)["sha256"],
                 device, prov)  # logs its progress and rate
