"""Draw one trial's SAE metrics across the teacher's training checkpoints."""
from interplab.figures.dynamics import checkpoint_dynamics
from interplab.io import provenance, read_table
from interplab.workflow import job, log_tables

with job(snakemake) as sm:  # noqa: F821
    metrics = read_table(sm.input[0])
    log_tables(f"trial {sm.wildcards.trial} across checkpoints {list(sm.params.steps)}", metrics=metrics)
    prov = provenance({"steps": dict(sm.params.steps)}, inputs={"metrics": sm.input[0]})
    checkpoint_dynamics(metrics, sm.params.steps, sm.wildcards.trial, sm.output.png, provenance=prov)
