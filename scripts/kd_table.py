"""Gather a trial's per-snapshot KD records into its metrics and floors tables."""
from interplab import kd
from interplab.io import provenance, read_json, write_table
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    records = [read_json(p) for p in sm.input]
    prov = provenance({"trial": sm.wildcards.trial}, inputs={str(p): p for p in sm.input})
    write_table(sm.output.metrics, kd.metrics_table(records), prov)
    write_table(sm.output.floors, kd.floors_table(records), prov)
