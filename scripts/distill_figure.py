"""Draw one Experiments 3–4 figure."""
from interplab.figures import distill as figs
from interplab.io import provenance, read_table
from interplab.workflow import job

with job(snakemake) as sm:  # noqa: F821
    prov = provenance({"figure": sm.wildcards.fig}, inputs=dict(sm.input.items()))
    if sm.wildcards.fig == "floor_fit":
        figs.floor_fit(read_table(sm.input.floors), read_table(sm.input.curves), sm.output[0], prov)
    else:
        figs.probe_accuracy(read_table(sm.input.probes), "teacher", sm.output[0], prov)
