"""Draw every chosen per-trial SAE figure of one trial from its KD tables and training logs."""
import pandas as pd

from interplab.figures.sae import PER_TRIAL, TrialTables
from interplab.io import provenance, read_table
from interplab.workflow import job, log_tables

with job(snakemake) as sm:  # noqa: F821
    metrics, floors = read_table(sm.input.metrics), read_table(sm.input.floors)
    logs = pd.concat([read_table(p).assign(layer=int(layer)) for p, layer in zip(sm.input.logs, sm.params.layers)])
    primary_ckpt = sm.params.primary_ckpt
    log_tables(f"trial {sm.params.trial}", metrics=metrics, floors=floors, training_logs=logs)
    every_ckpt = TrialTables(trial=sm.params.trial, metrics=metrics,
                             floors=floors[floors["ckpt"] == primary_ckpt], log=logs)
    primary = TrialTables(trial=sm.params.trial, metrics=metrics[metrics["ckpt"] == primary_ckpt],
                          floors=every_ckpt.floors, log=logs)
    for fig, png in zip(sm.params.figures, sm.output.png, strict=True):
        prov = provenance({"figure": fig}, inputs={"metrics": sm.input.metrics, "floors": sm.input.floors})
        # metric_vs_tokens shows every model checkpoint; the rest show the primary one
        PER_TRIAL[fig](every_ckpt if fig == "metric_vs_tokens" else primary, png, prov)
