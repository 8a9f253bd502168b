"""Draw the L1 trials side by side, with the adaptive trials' target L0 from the config."""
from interplab.figures.sae import compare_trials
from interplab.io import provenance, read_table
from interplab.workflow import job, log_tables

with job(snakemake) as sm:  # noqa: F821
    tables = {trial: read_table(path) for trial, path in zip(sm.params.trials, sm.input)}
    primary = {trial: t[t["ckpt"] == sm.params.primary_ckpt] for trial, t in tables.items()}
    log_tables(f"trials at {sm.params.primary_ckpt}", **primary)
    prov = provenance({"trials": sm.params.trials, "target_l0": sm.params.target_l0},
                      inputs=dict(zip(sm.params.trials, sm.input)))
    compare_trials(primary, sm.output[0], prov, target_l0=sm.params.target_l0)
