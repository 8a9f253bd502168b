"""Train every SAE of one job (every trial × layer of a layer group, or every dictionary size of the
sizes stage) from one pass over its activations; export every snapshot. A member's `sae` entry
overrides the shared settings and its `init_key` separates its init (the sizes stage's dictionaries)."""
import dataclasses
import logging
import time
from pathlib import Path

from interplab.activations import ActivationCache, hook_name
from interplab.io import provenance, sha256_json, write_table
from interplab.runtime import resolve_device
from interplab.sae.checkpoint import WorkDir
from interplab.sae.export import export_run
from interplab.sae.plan import train_config
from interplab.sae.sources import LayerStack, LMStream, layer_columns
from interplab.sae.trainer import GroupTrainer, Member
from interplab.workflow import job


def lm_stream(sm, layers, device):
    """The LM forward over the training token split, every group layer's resid_post side by side."""
    from interplab.teacher.bridge import LOADER, PROVENANCE_FILE, BridgeSpec, checkpoint_inputs, load_bridge
    from interplab.teacher.streams import load_streams, take_tokens

    lm, w = sm.params.lm, sm.wildcards
    checkpoint = getattr(sm.input, "checkpoint", None)
    bridge = load_bridge(BridgeSpec.of_revision(lm["source"], lm["name"], w.ckpt, checkpoint, device, lm["dtype"]))
    tokens = take_tokens(load_streams(sm.input.streams)["train"], lm["train_tokens"], "train")
    identity = {"model": lm["name"], "revision": w.ckpt, "loader": LOADER, "dtype": lm["dtype"], "layers": list(layers),
                "tokens": Path(sm.input.record).read_text(), "train_tokens": lm["train_tokens"],
                "weights": Path(checkpoint, PROVENANCE_FILE).read_text() if checkpoint else None}
    inputs = {"streams": sm.input.streams, **checkpoint_inputs(checkpoint)}
    return LMStream(bridge, tokens, layers, lm["batch_size"], device, sha256_json(identity)), inputs


with job(snakemake) as sm:  # noqa: F821
    w, p = sm.wildcards, sm.params
    device = resolve_device(p.device)
    layers = list(p.layers)
    if p.sae["source"] == "stream":
        source, inputs = lm_stream(sm, layers, device)
    else:
        caches = [ActivationCache(path) for path in sm.input.cache]
        source = LayerStack(caches)
        inputs = {f"manifest_L{c.layer:02d}": str(c.path / "manifest.json") for c in caches}
    members = {}
    for m in p.members:
        cfg = train_config({**p.sae, **m.get("sae", {})}, m["trial"], source.layer_d_model, w.model, w.ckpt, m["layer"],
                           device, init_key=tuple(m.get("init_key", ())))
        columns = layer_columns(layers.index(m["layer"]), source.layer_d_model)
        members[(m["trial"], m["layer"])] = Member(cfg, m["work_dir"], columns, log_path=m["log"])
    start = time.perf_counter()
    runs = GroupTrainer(members, source).train()
    seconds = time.perf_counter() - start
    trained = sum((members[k].cfg.n_steps - run.resumed_from_step) * members[k].cfg.batch_size for k, run in runs.items())
    logging.info("%d SAEs, %d SAE-tokens trained in %.1fs (%.0f SAE-tokens/s on %s, source %s)", len(runs), trained,
                 seconds, trained / seconds, device, p.sae["source"])
    for m in p.members:
        key = (m["trial"], m["layer"])
        cfg, run = members[key].cfg, runs[key]
        prov = provenance({"trial": m["trial"], "sae": p.sae, "train_config": dataclasses.asdict(cfg),
                           "layer_group": layers}, inputs=inputs, seed={"init": cfg.init_seed, "data": cfg.data_seed})
        metadata = {**p.saelens, "revision": w.ckpt, "hook_name": hook_name(m["layer"]),
                    "layer": m["layer"], "trial": m["trial"], "l1_form": cfg.l1.form, "recipe": cfg.recipe(),
                    "provenance": prov}
        names = p.snapshots
        export_run(m["work_dir"], run.snapshots, dict(zip(names, map(Path, m["snapshot_dirs"]))),
                   dict(zip(names, m["pt"])), metadata)
        write_table(m["log"], run.log, prov)
    for m in p.members:
        WorkDir(m["work_dir"]).clear()
