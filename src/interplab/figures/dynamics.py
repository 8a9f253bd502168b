"""Training dynamics: how one trial's SAE metrics move across the teacher's training checkpoints.

One panel per metric (α, d*_S, L0, F_unique and, where the LM splice ran, CE loss recovered), one
line per layer, the final SAE snapshot of every checkpoint on the x axis at the checkpoint's
training step. Steps run from 0 on Pythia's exponential schedule, so the axis is symlog (linear
below step 1); revisions without a step number (a hub branch name) are placed in config order
instead, and the axis says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import NullLocator

from interplab.figures import style

PANELS = [
    ("alpha", "sparsity α"),
    ("dstar", "critical width d*_S"),
    ("l0", "L0 (active latents per token)"),
    ("f_unique", "F_unique (distinct alive latents)"),
    ("ce_recovered_zero", "CE loss recovered (zero ablation)"),
]


def checkpoint_positions(ckpts: list[str], steps: Mapping[str, int | None]) -> tuple[np.ndarray, bool]:
    """x positions of the checkpoints: their training steps when every one has a step, else 0, 1, 2…"""
    known = [steps.get(ckpt) for ckpt in ckpts]
    if all(step is not None for step in known):
        return np.asarray(known, dtype=float), True
    return np.arange(len(ckpts), dtype=float), False


def checkpoint_dynamics(metrics: pd.DataFrame, steps: Mapping[str, int | None], trial: str, path: str | Path,
                        snapshot: str = "final", provenance=None) -> None:
    """Each metric of the trial's `snapshot` SAEs against the teacher checkpoint, one line per layer."""
    style.apply()
    rows = metrics[metrics["snapshot"] == snapshot]
    ckpts = list(dict.fromkeys(rows["ckpt"]))  # config order, as the metrics table lists them
    if len(ckpts) < 2:
        raise ValueError(f"training dynamics need at least two checkpoints; trial {trial} has {ckpts}")
    x, by_step = checkpoint_positions(ckpts, steps)
    order = np.argsort(x, kind="stable")
    panels = [(column, label) for column, label in PANELS
              if column in rows.columns and np.isfinite(rows[column].astype(float)).any()]
    layers = sorted(rows["layer"].unique())
    colors = style.sequential_colors(len(layers))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.2), squeeze=False)
    for ax, (column, label) in zip(axes[0], panels):
        for color, layer in zip(colors, layers):
            per_ckpt = rows[rows["layer"] == layer].set_index("ckpt")[column].reindex(ckpts).astype(float)
            ax.plot(x[order], per_ckpt.to_numpy()[order], marker="o", ms=4, color=color, label=f"layer {layer}")
        ax.set_title(label)
        style.value_axis(ax, rows[column].astype(float))
        if column in ("alpha", "ce_recovered_zero"):
            ax.axhline(1.0, color="0.6", lw=0.8, ls=":")
        if by_step:
            ax.set_xscale("symlog", linthresh=1)
            ax.set_xlim(x.min() - 0.3 if x.min() < 1 else x.min() / 1.3, x.max() * 1.3)
            ax.set_xlabel("teacher training step")
            ax.set_xticks(x[order], [style.count_label(step) for step in x[order]])  # the steps studied
            ax.xaxis.set_minor_locator(NullLocator())
        else:
            ax.set_xticks(x, ckpts, rotation=30)
            ax.set_xlabel("teacher checkpoint (config order)")
    axes[0][0].legend(loc="best")
    fig.suptitle(f"Trial {trial}: SAE metrics across teacher checkpoints ({snapshot} snapshot, held-out tokens)")
    fig.tight_layout()
    style.save(fig, path, provenance)
