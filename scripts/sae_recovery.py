"""Score every snapshot of one SAE trained on the synthetic source against the true dictionary."""
import logging

import pandas as pd

from interplab.io import provenance, read_json, write_table
from interplab.sae.export import load_sae
from interplab.synthetic import load_ground_truth, mean_max_cosine
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    truth = load_ground_truth(sm.input.cache)
    rows = []
    for snapshot, directory in zip(sm.params.snapshots, sm.params.snapshot_dirs):
        meta = read_json(f"{directory}/cfg.json")["metadata"]
        rows.append({"snapshot": snapshot, "tokens": meta["training_tokens"],
                     "mmcs": mean_max_cosine(truth, load_sae(directory).W_dec)})
    table = pd.DataFrame(rows)
    logging.info("MMCS to the true dictionary by snapshot: %s",
                 ", ".join(f"{r['snapshot']} {r['mmcs']:.3f}" for r in rows))
    write_table(sm.output[0], table, provenance({"trial": sm.wildcards.trial},
                                                inputs={"ground_truth": f"{sm.input.cache}/ground_truth.safetensors"}))
