"""Draw one per-trial SAE figure from the trial's KD tables and training logs."""
import pandas as pd

from interplab.figures.sae import PER_TRIAL, TrialTables
from interplab.io import provenance, read_table
from interplab.workflow import job, log_tables

with job(snakemake) as sm:  # noqa: F821
    metrics, floors = read_table(sm.input.metrics), read_table(sm.input.floors)
    logs = pd.concat([read_table(p).assign(layer=int(layer)) for p, layer in zip(sm.input.logs, sm.params.layers)])
    primary = metrics["ckpt"] == sm.params.primary_ckpt
    per_layer = sm.wildcards.fig != "metric_vs_tokens"  # that one shows every model checkpoint
    tables = TrialTables(trial=sm.wildcards.trial, metrics=metrics[primary] if per_layer else metrics,
                         floors=floors[floors["ckpt"] == sm.params.primary_ckpt], log=logs)
    log_tables(f"trial {tables.trial} {sm.wildcards.fig}", metrics=tables.metrics, floors=tables.floors,
               training_logs=tables.log)
    prov = provenance({"figure": sm.wildcards.fig}, inputs={"metrics": sm.input.metrics, "floors": sm.input.floors})
    PER_TRIAL[sm.wildcards.fig](tables, sm.output[0], prov)
