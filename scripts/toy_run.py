"""Train one toy configuration (all widths × seeds) and write its per-run table."""
import dataclasses
import logging
import time

from interplab.io import provenance, write_table
from interplab.runtime import resolve_device
from interplab.toy import ToyConfig, resolve_engine, run_config
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821 (injected by Snakemake)
    cfg = ToyConfig(**{**sm.params.toy, "device": resolve_device(sm.params.device)})
    cfg = dataclasses.replace(cfg, engine=resolve_engine(cfg.engine, cfg.device))  # provenance names the engine used
    start = time.perf_counter()
    runs = run_config(cfg)
    logging.info("%s: %d models trained in %.1fs", sm.wildcards.run, len(runs), time.perf_counter() - start)
    write_table(sm.output[0], runs, provenance(dataclasses.asdict(cfg)))
