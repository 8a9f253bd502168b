"""Draw seed 003's figures from the dictionary-size tables."""
from interplab.figures import sizes as figs
from interplab.io import provenance, read_table
from interplab.workflow import job, log_tables

with job(snakemake) as sm:  # noqa: F821
    sizes, features = read_table(sm.input.sizes), read_table(sm.input.features)
    log_tables(f"dictionary sizes, layer {sm.params.layer}", sizes=sizes, features=features)
    layer = sm.params.layer
    draw = {
        "mmcs_vs_size": lambda out, prov: figs.mmcs_vs_size(sizes, layer, out, prov),
        "mcs_histograms": lambda out, prov: figs.mcs_histograms(sizes, features, layer, out, prov),
        "neuron_basis": lambda out, prov: figs.neuron_basis(sizes, features, layer, out, prov),
    }
    for fig, out in zip(sm.params.figures, sm.output.png, strict=True):
        draw[fig](out, provenance({"figure": fig}, inputs=dict(sm.input.items())))
