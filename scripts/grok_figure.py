"""Draw one grokking-stage figure from the run histories and the summary."""
from pathlib import Path

from interplab.figures import grok as figs
from interplab.grok.analysis import load_histories
from interplab.io import provenance, read_table
from interplab.workflow import job, log_tables

with job(snakemake) as sm:  # noqa: F821
    summary = read_table(sm.input.summary)
    histories = load_histories(Path(p).parent for p in sm.input.manifests)
    prov = provenance({"figure": sm.wildcards.fig}, inputs={"summary": sm.input.summary})
    out = sm.output[0]
    log_tables(sm.wildcards.fig, summary=summary, histories=histories)
    draw = {
        "accuracy_curves": lambda: figs.accuracy_curves(histories, summary, out, prov),
        "regime_curves": lambda: figs.regime_curves(histories, out, prov),
        "ungrokking_overview": lambda: figs.ungrokking_overview(summary, out, prov),
        "weight_norms": lambda: figs.weight_norms(histories, out, prov),
        "modular_control": lambda: figs.modular_control(histories, summary, out, prov),
    }
    draw[sm.wildcards.fig]()
