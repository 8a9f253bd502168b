"""Draw every grokking-stage figure from the run histories and the summary."""
from pathlib import Path

from interplab.figures import grok as figs
from interplab.grok.analysis import load_histories
from interplab.io import provenance, read_table
from interplab.workflow import job, log_tables

with job(snakemake) as sm:  # noqa: F821
    summary = read_table(sm.input.summary)
    histories = load_histories(Path(p).parent for p in sm.input.manifests)
    log_tables("grokking figures", summary=summary, histories=histories)
    draw = {
        "accuracy_curves": lambda out, prov: figs.accuracy_curves(histories, summary, out, prov),
        "regime_curves": lambda out, prov: figs.regime_curves(histories, out, prov),
        "ungrokking_overview": lambda out, prov: figs.ungrokking_overview(summary, out, prov),
        "weight_norms": lambda out, prov: figs.weight_norms(histories, out, prov),
        "modular_control": lambda out, prov: figs.modular_control(histories, summary, out, prov),
    }
    for fig, out in zip(sm.params.figures, sm.output.png, strict=True):
        draw[fig](out, provenance({"figure": fig}, inputs={"summary": sm.input.summary}))
