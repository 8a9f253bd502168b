"""Train one SAE (trial × model × ckpt × layer) from its activation cache; export every snapshot."""
import dataclasses
import logging
import time
from pathlib import Path

from interplab.activations import ActivationCache
from interplab.io import provenance, write_table
from interplab.runtime import resolve_device
from interplab.sae.export import export_run
from interplab.sae.plan import train_config
from interplab.sae.checkpoint import WorkDir
from interplab.sae.trainer import SAETrainer
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    w = sm.wildcards
    cache = ActivationCache(sm.input.cache)
    cfg = train_config(sm.params.sae, w.trial, cache.d_model, w.model, w.ckpt, int(w.layer), resolve_device(sm.params.device))
    start = time.perf_counter()
    run = SAETrainer(cfg, cache, sm.params.work_dir).train()
    seconds = time.perf_counter() - start
    trained = (cfg.n_steps - run.resumed_from_step) * cfg.batch_size
    logging.info("%d tokens trained in %.1fs (%.0f tokens/s on %s), resumed from step %d", trained, seconds,
                 trained / seconds, cfg.device, run.resumed_from_step)
    prov = provenance({"trial": w.trial, "sae": sm.params.sae, "train_config": dataclasses.asdict(cfg)},
                      inputs={"manifest": f"{sm.input.cache}/manifest.json"},
                      seed={"init": cfg.init_seed, "data": cfg.data_seed})
    metadata = {"model_name": w.model, "revision": w.ckpt, "hook_name": cache.manifest["hook"], "layer": int(w.layer),
                "trial": w.trial, "l1_form": cfg.l1.form, "recipe": cfg.recipe(), "provenance": prov}
    names = sm.params.snapshots
    export_run(sm.params.work_dir, run.snapshots, {n: Path(p).parent for n, p in zip(names, sm.output.cfg)},
               dict(zip(names, sm.output.pt)), metadata)
    write_table(sm.output.log, run.log, prov)
    WorkDir(sm.params.work_dir).clear()
