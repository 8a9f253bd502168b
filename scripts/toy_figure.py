"""Draw every Experiment 1 figure from the toy summary tables."""
from interplab.figures import toy as figs
from interplab.io import provenance, read_table
from interplab.workflow import job, log_tables

with job(snakemake) as sm:  # noqa: F821
    summary, curves, seeds = (read_table(sm.input[k]) for k in ("summary", "curves", "seeds"))
    log_tables("toy figures", summary=summary, curves=curves, seeds=seeds)
    draw = {
        "fig1_loss_floor_curves": lambda out, prov: figs.loss_floor_curves(curves, summary, out, prov),
        "fig5_config_heatmap": lambda out, prov: figs.config_heatmap(summary, out, prov),
        "fig8_floor_vs_dstar": lambda out, prov: figs.floor_vs_dstar(seeds, summary, out, prov),
        "fig9_sparsity_effect": lambda out, prov: figs.sparsity_effect(curves, out, prov),
    }
    for fig, out in zip(sm.params.figures, sm.output.png, strict=True):
        draw[fig](out, provenance({"figure": fig}, inputs=dict(sm.input.items())))
