"""Summarise every grokking run: peak / final held-out accuracy and its classification."""
import logging
from pathlib import Path

from interplab.grok.analysis import Criteria, load_histories, summarize
from interplab.io import provenance, write_table
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    criteria = dict(sm.params.criteria)
    summary = summarize(load_histories(Path(p).parent for p in sm.input), Criteria(**criteria))
    logging.info("%d runs:\n%s", len(summary), summary.to_string(index=False, float_format="%.3f"))
    write_table(sm.output[0], summary, provenance({"classification": criteria}, inputs={str(p): p for p in sm.input}))
