"""Draw one interventions figure from the per-run tables and the across-run statistics."""
import pandas as pd

from interplab.figures import interventions as figs
from interplab.io import provenance, read_table
from interplab.workflow import job


def across_runs(paths, runs):
    return pd.concat([read_table(p).assign(run=run) for p, run in zip(paths, runs)], ignore_index=True)


with job(snakemake) as sm:  # noqa: F821
    runs, out, fig = sm.params.runs, sm.output[0], sm.wildcards.fig
    prov = provenance({"figure": fig}, inputs={"stats": sm.input.stats})
    draw = {
        "probe_heatmaps": lambda: figs.probe_heatmaps(across_runs(sm.input.probes, runs), out, prov),
        "ablation": lambda: figs.ablation(across_runs(sm.input.ablation, runs), out, prov),
        "steering": lambda: figs.steering(across_runs(sm.input.steering, runs), out, prov),
        "neurons": lambda: figs.neurons(across_runs(sm.input.neurons, runs), out, prov),
        "stats": lambda: figs.stats_panel(read_table(sm.input.criteria), read_table(sm.input.stats), out, prov),
    }
    draw[fig]()
