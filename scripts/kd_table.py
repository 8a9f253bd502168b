"""Gather a trial's per-snapshot KD (and splice) records into its metrics, floors and density tables."""
import logging

from interplab import kd
from interplab.io import provenance, read_json, write_table
from interplab.sae.evaluate import with_splice_columns
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    records = [read_json(p) for p in sm.input.records]
    splice = [read_json(p) for p in sm.input.splice]
    prov = provenance({"trial": sm.wildcards.trial}, inputs={str(p): p for p in [*sm.input.records, *sm.input.splice]})
    metrics, floors = with_splice_columns(kd.metrics_table(records), splice), kd.floors_table(records)
    logging.info("trial %s: %d snapshot records → %d metric rows, %d floor rows; "
                 "per (ckpt, snapshot), mean over layers:\n%s",
                 sm.wildcards.trial, len(records), len(metrics), len(floors),
                 metrics.groupby(["ckpt", "snapshot"], sort=False)[["f_alive", "l0", "alpha", "dstar", "fvu",
                                                                   "ce_recovered_zero"]]
                 .mean().to_string(float_format="%.4g"))
    write_table(sm.output.metrics, metrics, prov)
    write_table(sm.output.floors, floors, prov)
    write_table(sm.output.density, kd.density_table(records), prov)
