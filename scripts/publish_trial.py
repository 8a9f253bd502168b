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
    files = {key: publish.SnapshotFiles(Path(weights).parent, Path(pt), Path(sparsity))
             for key, weights, pt, sparsity in zip(keys, sm.input.weights, sm.input.pt, sm.input.sparsity)}
    folder = publish.assemble(card, files, metrics, sm.output.folder, p.repo_id)
    write_json(sm.output.status, publish.upload(folder, p.repo_id, os.environ.get(p.token_env)))
