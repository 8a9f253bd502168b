"""Draw the SAE Pareto fronts (L0 vs FVU, L0 vs CE loss recovered) of every trial."""
from interplab.figures.evaluation import pareto
from interplab.io import provenance, read_table
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    tables = {trial: read_table(path) for trial, path in zip(sm.params.trials, sm.input)}
    primary = {trial: t[t["ckpt"] == sm.params.primary_ckpt] for trial, t in tables.items()}
    pareto(primary, sm.output[0], provenance({"trials": sm.params.trials, "primary_ckpt": sm.params.primary_ckpt},
                                             inputs=dict(zip(sm.params.trials, sm.input))))
