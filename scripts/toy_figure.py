"""Draw one Experiment 1 figure from the toy summary tables."""
from interplab.figures import toy as figs
from interplab.io import provenance, read_table
from interplab.workflow import job, log_tables

with job(snakemake) as sm:  # noqa: F821
    summary, curves, seeds = (read_table(sm.input[k]) for k in ("summary", "curves", "seeds"))
    prov = provenance({"figure": sm.wildcards.fig}, inputs=dict(sm.input.items()))
    out = sm.output[0]
    log_tables(sm.wildcards.fig, summary=summary, curves=curves, seeds=seeds)
    draw = {
        "fig1_loss_floor_curves": lambda: figs.loss_floor_curves(curves, summary, out, prov),
        "fig5_config_heatmap": lambda: figs.config_heatmap(summary, out, prov),
        "fig8_floor_vs_dstar": lambda: figs.floor_vs_dstar(seeds, summary, out, prov),
        "fig9_sparsity_effect": lambda: figs.sparsity_effect(curves, out, prov),
    }
    draw[sm.wildcards.fig]()
