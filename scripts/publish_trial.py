"""Assemble a trial's Hugging Face folder and upload it when configured."""
import os
from pathlib import Path

from interplab import publish
from interplab.io import read_json, read_table, write_json
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    p = sm.params
    metrics = read_table(sm.input.metrics)
    final = metrics[(metrics["ckpt"] == p.card["revision"]) & (metrics["snapshot"] == p.snapshots[-1])]
    first_cfg = read_json(Path(sm.input.weights[0]).parent / "cfg.json")
    card = publish.TrialCard(**p.card, d_in=first_cfg["d_in"], d_sae=first_cfg["d_sae"], metrics=final)
    keys = [(layer, snapshot) for layer in p.layers for snapshot in p.snapshots]
    snapshot_dirs = {k: Path(w).parent for k, w in zip(keys, sm.input.weights)}
    folder = publish.assemble(card, snapshot_dirs, dict(zip(keys, sm.input.pt)), metrics, sm.output.folder, p.repo_id)
    write_json(sm.output.status, publish.upload(folder, p.repo_id, os.environ.get(p.token_env)))
