"""Per-run criteria and the across-run statistics (counts, Fisher, Mann-Whitney, bootstrap, power line)."""
import logging
from pathlib import Path

from interplab.interventions.across_runs import Criteria, run_info, stats_table, summarise_runs
from interplab.io import provenance, read_table, write_table
from interplab.workflow import job

TABLES = ("probes", "ablation", "steering", "neurons")

with job(snakemake) as sm:  # noqa: F821
    section = dict(sm.params.interventions)
    runs = sm.params.runs
    tables = {run: {name: read_table(sm.input[name][i]) for name in TABLES} for i, run in enumerate(runs)}
    info = run_info(Path(p).parent for p in sm.input.manifests)
    per_run = summarise_runs(tables, info, Criteria(**section["criteria"]))
    stats = stats_table(per_run, section["compare"]["treatment"], section["compare"]["control"], section["alpha"],
                        section["bootstrap_samples"], section["seed"])
    logging.info("%d runs; across-run statistics:\n%s", len(per_run), stats.to_string(index=False, float_format="%.4g"))
    prov = provenance({"interventions": section}, inputs={f"{name}:{run}": sm.input[name][i]
                                                          for name in TABLES for i, run in enumerate(runs)})
    write_table(sm.output.criteria, per_run, prov)
    write_table(sm.output.stats, stats, prov)
