"""Cache every requested layer's resid_post for one model revision: one forward per batch."""
import logging
import time

from interplab.activations import CacheSpec, build_caches
from interplab.io import provenance, read_json
from interplab.runtime import resolve_device
from interplab.teacher.bridge import LOADER, BridgeSpec, load_bridge
from interplab.teacher.streams import load_streams, take_tokens
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    plan, cache, ckpt = sm.params.plan, sm.params.cache, sm.wildcards.ckpt
    device = resolve_device(sm.params.device)
    local = plan.source == "local"
    bridge = load_bridge(BridgeSpec(source=plan.source, name=sm.input.checkpoint if local else plan.name,
                                    revision=None if local else ckpt, device=device, dtype=sm.params.dtype))
    rows = load_streams(sm.input.streams)
    streams = {split: take_tokens(rows[split], cache[f"{split}_tokens"], split) for split in rows}
    spec = CacheSpec(model=plan.label, revision=ckpt, source=plan.source, layers=plan.layers, dtype=cache["dtype"],
                     shard_tokens=cache["shard_tokens"], batch_size=sm.params.batch_size, loader=LOADER)
    inputs = {"streams": sm.input.streams, **({"weights": f"{sm.input.checkpoint}/model.safetensors"} if local else {})}
    prov = provenance({"cache": cache, "model": plan.name, "revision": ckpt, "layers": list(plan.layers),
                       "model_dtype": sm.params.dtype, "batch_size": sm.params.batch_size}, inputs=inputs)
    start = time.perf_counter()
    build_caches(bridge, streams, spec, dict(zip(plan.layers, sm.output)), read_json(sm.input.record)["sha256"],
                 device, prov)
    seconds = time.perf_counter() - start
    tokens = sum(int(s.numel()) for s in streams.values())
    logging.info("%s/%s: %d tokens × %d layers cached in %.1fs (%.0f tokens/s on %s)", plan.label, ckpt, tokens,
                 len(plan.layers), seconds, tokens / seconds, device)
