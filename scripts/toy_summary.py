"""Collect every toy run into per-width curves, per-seed critical widths and the summary table."""
import pandas as pd

from interplab.io import provenance, read_table, write_table
from interplab.toy_analysis import seed_critical_widths, summarize, width_curves
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    runs = pd.concat([read_table(p) for p in sm.input], ignore_index=True)
    prov = provenance({"critical_tolerance": sm.params.tolerance}, inputs={str(p): p for p in sm.input})
    write_table(sm.output.summary, summarize(runs, sm.params.tolerance), prov)
    write_table(sm.output.curves, width_curves(runs), prov)
    write_table(sm.output.seeds, seed_critical_widths(runs, sm.params.tolerance), prov)
