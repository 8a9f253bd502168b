"""Collect every toy run into curves, critical widths, capacity, accuracy readings and the summary table."""
import pandas as pd

from interplab.io import provenance, read_table, write_table
from interplab.toy_analysis import (accuracy_by_alpha, add_predictions, capacity_by_width, fitted_capacity,
                                    point_accuracies, seed_critical_widths, summarize, width_curves)
from interplab.workflow import job, log_tables

with job(snakemake) as sm:  # noqa: F821
    runs = pd.concat([read_table(p) for p in sm.input], ignore_index=True)
    prov = provenance({"critical_tolerance": sm.params.tolerance, "critical_tolerance_sweep": sm.params.tolerance_sweep},
                      inputs={str(p): p for p in sm.input})
    capacity = fitted_capacity(runs)
    runs = add_predictions(runs, capacity)
    points = point_accuracies(runs)
    log_tables(f"{len(sm.input)} toy configurations", runs=runs, points=points, capacity_fit=capacity)
    write_table(sm.output.summary, summarize(runs, points, sm.params.tolerance, sm.params.tolerance_sweep), prov)
    write_table(sm.output.curves, width_curves(runs), prov)
    write_table(sm.output.seeds, seed_critical_widths(runs, sm.params.tolerance), prov)
    write_table(sm.output.accuracy, accuracy_by_alpha(points), prov)
    write_table(sm.output.capacity_fit, capacity, prov)
    write_table(sm.output.capacity, capacity_by_width(runs), prov)
