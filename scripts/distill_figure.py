"""Draw one Experiments 3–4 figure."""
from interplab.figures import distill as figs
from interplab.io import provenance, read_table
from interplab.workflow import job, log_tables

with job(snakemake) as sm:  # noqa: F821
    prov = provenance({"figure": sm.wildcards.fig}, inputs=dict(sm.input.items()))
    if sm.wildcards.fig == "floor_fit":
        floors, curves = read_table(sm.input.floors), read_table(sm.input.curves)
        fit = floors.iloc[0]
        log_tables(f"floor fit (r² {fit['fit_r2']:.3f}, Spearman ρ {fit['spearman_rho']:.3f})", floors=floors,
                   curves=curves)
        figs.floor_fit(floors, curves, sm.output[0], prov)
    else:
        probes = read_table(sm.input.probes)
        log_tables("probe accuracy", probes=probes)
        figs.probe_accuracy(probes, "teacher", sm.output[0], prov)
