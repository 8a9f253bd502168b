"""Draw the three L1 trials side by side."""
from interplab.figures.sae import compare_trials
from interplab.io import provenance, read_table
from interplab.workflow import job, log_tables

with job(snakemake) as sm:  # noqa: F821
    tables = {trial: read_table(path) for trial, path in zip(sm.params.trials, sm.input)}
    primary = {trial: t[t["ckpt"] == sm.params.primary_ckpt] for trial, t in tables.items()}
    log_tables(f"trials at {sm.params.primary_ckpt}", **primary)
    compare_trials(primary, sm.output[0], provenance({"trials": sm.params.trials}, inputs=dict(zip(sm.params.trials, sm.input))))
