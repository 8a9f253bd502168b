"""SAE evaluation figure: the sparsity / fidelity Pareto fronts researchers compare SAEs on.

L0 (latents firing per token) against the fraction of variance unexplained, and against the CE
loss recovered with the reconstruction spliced into the LM (interplab.sae.evaluate), for every
trial and snapshot. A better SAE sits further down-left (FVU) or up-left (CE recovered). Points of
one (trial, layer) are joined in snapshot order, so the path shows where training moved the SAE.
Reads only the trials' metrics.csv tables (interplab.kd.metrics_table plus the splice columns).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from interplab.figures import style

PANELS = (("fvu", "FVU (1 − explained variance)", False),
          ("ce_recovered_zero", "CE loss recovered (zero ablation)", True))
MARKERS = "osD^v<>ph*"


def pareto(tables: Mapping[str, pd.DataFrame], path: str | Path, provenance=None) -> None:
    """Two panels, L0 vs FVU and L0 vs CE loss recovered (zero ablation, SAELens's convention);
    colour = trial, marker = layer, larger = later snapshot. Without a language model (the synthetic
    source) the CE panel says so instead of plotting NaN."""
    style.apply()
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.9))
    trials = list(tables)
    colours = dict(zip(trials, [f"C{i}" for i in range(len(trials))]))
    layers = sorted({int(l) for t in tables.values() for l in t["layer"]}) if tables else []
    for ax, (column, label, higher_better) in zip(axes, PANELS):
        drawn = False
        for trial, table in tables.items():
            if column not in table or table[column].isna().all():
                continue
            for (layer,), rows in table.groupby(["layer"]):
                rows = rows.sort_values("tokens")
                sizes = 14 + 36 * np.linspace(0, 1, len(rows)) if len(rows) > 1 else [40]
                ax.plot(rows["l0"], rows[column], "-", color=colours[trial], lw=0.8, alpha=0.6)
                ax.scatter(rows["l0"], rows[column], s=sizes, color=colours[trial],
                           marker=MARKERS[layers.index(int(layer)) % len(MARKERS)], edgecolor="white", lw=0.4)
                drawn = True
        if not drawn:
            ax.text(0.5, 0.5, "not measured\n(no language model: synthetic source)", ha="center", va="center",
                    transform=ax.transAxes, color="0.4")
            ax.set_xticks([])
            ax.set_yticks([])
        else:
            style.value_axis(ax, pd.concat([t["l0"] for t in tables.values()]), axis="x")  # plain ticks: 5, 10, 20…
            ax.set_xlabel("L0 (latents firing per token)")
            if higher_better:
                ax.axhline(1.0, color="0.5", ls=":", lw=0.8)
        ax.set_ylabel(label)
        ax.set_title(f"{label.split(' (')[0]}: {'higher' if higher_better else 'lower'} is better")
    handles = [plt.Line2D([], [], color=colours[t], marker="o", ls="-", label=f"trial {t}") for t in trials]
    handles += [plt.Line2D([], [], color="0.3", marker=MARKERS[i % len(MARKERS)], ls="", label=f"layer {layer}")
                for i, layer in enumerate(layers)]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 8), frameon=False,
               bbox_to_anchor=(0.5, -0.02))
    fig.suptitle("SAE Pareto fronts: sparsity against reconstruction and downstream loss "
                 "(marker size grows with training tokens)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    style.save(fig, path, provenance)
