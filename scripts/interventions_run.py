"""The four intervention tables of one Camelyon17 grokking run (probes, ablation, steering, neurons)."""
from pathlib import Path

from threadpoolctl import threadpool_limits

from interplab.interventions.config import InterventionConfig
from interplab.interventions.run import run_interventions
from interplab.io import provenance, write_table
from interplab.runtime import resolve_device
from interplab.workflow import job

with job(snakemake) as sm, threadpool_limits(sm.threads):  # noqa: F821
    section = dict(sm.params.interventions)
    run_dir = Path(sm.input.manifest).parent
    tables = run_interventions(run_dir, InterventionConfig(**section), resolve_device(sm.params.device))
    prov = provenance({"interventions": section, "run": sm.wildcards.run},
                      inputs={"manifest": sm.input.manifest, "history": sm.input.history})
    for name, table in tables.items():
        write_table(sm.output[name], table, prov)
