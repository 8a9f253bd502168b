"""Draw every interventions figure from the per-run tables and the across-run statistics."""
import pandas as pd

from interplab.figures import interventions as figs
from interplab.io import provenance, read_table
from interplab.workflow import job, log_tables

# figure → (the per-run table it draws, its drawing function); `stats` draws the across-run tables
PER_RUN = {"probe_heatmaps": ("probes", figs.probe_heatmaps), "ablation": ("ablation", figs.ablation),
           "steering": ("steering", figs.steering), "neurons": ("neurons", figs.neurons)}


def across_runs(paths, runs):
    return pd.concat([read_table(p).assign(run=run) for p, run in zip(paths, runs)], ignore_index=True)


with job(snakemake) as sm:  # noqa: F821
    runs = sm.params.runs
    for fig, out in zip(sm.params.figures, sm.output.png, strict=True):
        prov = provenance({"figure": fig}, inputs={"stats": sm.input.stats})
        if fig == "stats":
            criteria, stats = read_table(sm.input.criteria), read_table(sm.input.stats)
            log_tables(fig, criteria=criteria, stats=stats)
            figs.stats_panel(criteria, stats, out, prov)
        else:
            name, draw = PER_RUN[fig]
            table = across_runs(sm.input[name], runs)
            log_tables(f"{fig} over {len(runs)} runs", **{name: table})
            draw(table, out, prov)
