"""Gather a trial's per-snapshot KD (and splice) records into its metrics, floors and density tables."""
from interplab import kd
from interplab.io import provenance, read_json, write_table
from interplab.sae.evaluate import with_splice_columns
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    records = [read_json(p) for p in sm.input.records]
    splice = [read_json(p) for p in sm.input.splice]
    prov = provenance({"trial": sm.wildcards.trial}, inputs={str(p): p for p in [*sm.input.records, *sm.input.splice]})
    write_table(sm.output.metrics, with_splice_columns(kd.metrics_table(records), splice), prov)
    write_table(sm.output.floors, kd.floors_table(records), prov)
    write_table(sm.output.density, kd.density_table(records), prov)
