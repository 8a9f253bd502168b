"""Experiment 2 figures: per-layer SAE KD metrics for one trial, in every rendering variant.

Every function takes tidy tables and an output path:
- `metrics`: one row per (layer, snapshot) of one model checkpoint, with the KD columns of
  `interplab.kd.KDMetrics.scalars()` plus `layer`, `snapshot`, `tokens` (training tokens seen);
- `floors`: one row per (layer, snapshot, d_student) with `floor_refined` and `floor_naive`;
- `log`: the training log of every layer (`layer`, `tokens`, `mse`, `l1_penalty`, `loss`, `l0`,
  `lambda`, `frac_alive`).
The per-layer figures show the final snapshot; `metric_vs_tokens` shows every snapshot. The seeds
(000/001) give each variant's reason to exist; the report captions repeat it. Every shade of a
layer × metric view follows `interplab.figures.scales` (and says so in the figure), and every axis
of a metric follows the same window, so no variant stretches a difference of a few percent.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from interplab.figures import scales, style

# (column, label, number format) of every metric the layer × metric views show.
METRICS = [
    ("l0", "L0", "{:.1f}"),
    ("alpha", "α", "{:.3f}"),
    ("g_alpha", "g(α)", "{:.2f}"),
    ("dstar", "d*_S", "{:.1f}"),
    ("mse", "MSE", "{:.3g}"),
    ("fvu", "FVU", "{:.3g}"),
    ("f_alive", "F alive", "{:.0f}"),
    ("dead", "dead", "{:.0f}"),
]
FORMATS = {column: fmt for column, _, fmt in METRICS}
# Every metric is non-negative; α is also at most 1. A metric's axis never leaves these bounds.
BOUNDS = {"alpha": (0.0, 1.0)}
KD_TRIO = [("alpha", "sparsity α"), ("g_alpha", "capacity g(α)"), ("dstar", "critical width d*_S")]
# The metrics followed across snapshots and compared across trials.
KD_PANELS = [("l0", "L0"), ("alpha", "α"), ("dstar", "d*_S"), ("mse", "MSE"), ("dead", "dead latents")]
# Below this many layers a rank correlation is noise (at n = 4, |ρ| = 1 comes up by chance once in 12).
MIN_CORRELATION_POINTS = 8
# The paper's sparsity per L1 trial, as config.yaml documents it (comment on sae.trials: A ≈ 0.81,
# B ≈ 0.94, C ≈ 0.994): compare_trials draws them as references.
PAPER_ALPHA = {"A": 0.81, "B": 0.94, "C": 0.994}


@dataclass(frozen=True)
class TrialTables:
    """Everything a per-trial figure may read (see the module docstring for the columns)."""

    trial: str
    metrics: pd.DataFrame
    floors: pd.DataFrame
    log: pd.DataFrame


def final_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The last snapshot (most tokens) of every layer, sorted by layer."""
    last = metrics.loc[metrics.groupby("layer")["tokens"].idxmax()]
    return last.sort_values("layer").reset_index(drop=True)


def _matrix(metrics: pd.DataFrame) -> pd.DataFrame:
    rows = final_rows(metrics)
    return rows.set_index("layer")[[m for m, _, _ in METRICS]].astype(float)


def _heatmap(ax, matrix: pd.DataFrame, cmap: str, annotate: bool = True, fontsize: float = 7.5,
             text_colors: tuple[str, str] = ("k", "w")) -> plt.cm.ScalarMappable:
    """Discrete layer × metric cells shaded by the scales policy, every number printed as it is ranked."""
    palette = scales.palette(cmap)
    shade = scales.matrix_levels(matrix, [fmt for _, _, fmt in METRICS])
    image = ax.imshow(np.ma.masked_invalid(shade), cmap=palette, vmin=0, vmax=1, aspect="auto",
                      interpolation="nearest")
    if annotate:
        for (r, c), value in np.ndenumerate(matrix.to_numpy()):
            ax.text(c, r, METRICS[c][2].format(value), ha="center", va="center", fontsize=fontsize,
                    color=scales.ink(palette, shade[r, c], *text_colors))
    ax.set_xticks(range(len(METRICS)), [label for _, label, _ in METRICS])
    ax.set_yticks(range(len(matrix)), [f"layer {layer}" for layer in matrix.index])
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return image


def _scale_key(fig, ax, image, pad: float = 0.12, width: int = 120) -> None:
    """A small palette key under a heatmap (which end is low) labelled with the scales policy in words."""
    bar = fig.colorbar(image, ax=ax, orientation="horizontal", fraction=0.05, pad=pad, aspect=50, shrink=0.45)
    bar.set_ticks([0, 1], labels=["lower", "higher"])
    bar.ax.tick_params(labelsize=7)
    bar.set_label(textwrap.fill(scales.NOTE, width), fontsize=7)


def _metric_axis(ax, values, column: str) -> None:
    """The y axis a metric is drawn on: log with plain ticks when it spans a decade, else the scales
    window within the metric's bounds (a few-percent spread stays nearly flat, as it stays nearly
    one shade in the heatmaps)."""
    if style.spans_decades(values):
        style.plain_log_axis(ax, "y")
        return
    lo, hi = scales.window(values, FORMATS[column])
    margin = 0.08 * (hi - lo)
    floor, ceiling = BOUNDS.get(column, (0.0, np.inf))
    ax.set_ylim(max(lo - margin, floor), min(hi + margin, ceiling))


def _layer_panels(n: int, width: float, height: float, max_cols: int, **kwargs):
    """A grid of one panel per layer (at most max_cols wide); the unused panels are hidden."""
    cols = min(max_cols, n)
    grid_rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(grid_rows, cols, figsize=(width * cols + 0.6, height * grid_rows + 0.9), squeeze=False,
                             **kwargs)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, list(axes.flat[:n])


def _title(trial: str, what: str) -> str:
    return f"Trial {trial}: {what}"


def training_curves(data: TrialTables, path: str | Path, provenance=None) -> None:
    """MSE, L1 penalty, total loss, L0, λ and fraction alive against tokens, one line per layer; a
    panel is log-scaled only where its values span a decade."""
    log, trial = data.log, data.trial
    style.apply()
    panels = [("mse", "reconstruction MSE"), ("l1_penalty", "λ·L1 penalty"), ("loss", "total loss"),
              ("l0", "L0 (active latents / token)"), ("lambda", "L1 coefficient λ"),
              ("frac_alive", "fraction alive (window)")]
    layers = sorted(log["layer"].unique())
    colors = dict(zip(layers, style.sequential_colors(len(layers))))
    fig, axes = plt.subplots(2, 3, figsize=(11, 5.6))
    for ax, (column, label) in zip(axes.flat, panels):
        for layer in layers:
            sub = log[log["layer"] == layer].sort_values("tokens")
            ax.plot(sub["tokens"], sub[column].to_numpy(dtype=float), color=colors[layer], lw=1.1,
                    label=f"layer {layer}")
        style.value_axis(ax, log[column])
        style.count_axis(ax)
        ax.set_title(label)
        ax.set_xlabel("training tokens")
    axes[1, 2].set_ylim(-0.02, 1.02)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(_title(trial, "SAE training curves per layer"))
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    style.save(fig, path, provenance)


def _scaled_card(data: TrialTables, path, provenance, cmap: str, what: str, annotate: bool = True) -> None:
    """One layer × metric heatmap with the scale key: the base of the plain and the gradient variants."""
    style.apply()
    matrix = _matrix(data.metrics)
    fig, ax = plt.subplots(figsize=(8.2, 0.42 * len(matrix) + 2.0))
    image = _heatmap(ax, matrix, cmap, annotate=annotate)
    _scale_key(fig, ax, image)
    ax.set_title(_title(data.trial, what))
    style.save(fig, path, provenance)


def layer_metric_heatmap(data: TrialTables, path: str | Path, provenance=None) -> None:
    """Layer × metric card: shade = value relative to the other layers (per column, scales policy), numbers exact."""
    _scaled_card(data, path, provenance, style.SEQUENTIAL, "KD metrics per layer (final snapshot)")


def kd_quantities(data: TrialTables, path: str | Path, provenance=None) -> None:
    """α, g(α) and d*_S side by side per layer: the inputs the width prediction needs. α and g(α) on
    the metric window; d*_S from zero to the dictionary size, the most it could be."""
    metrics, trial = data.metrics, data.trial
    style.apply()
    rows = final_rows(metrics)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, (column, label), color in zip(axes, KD_TRIO, ["C0", "C2", "C3"]):
        ax.plot(rows["layer"], rows[column], "o-", color=color)
        for layer, value in zip(rows["layer"], rows[column]):
            ax.annotate(FORMATS[column].format(value), (layer, value), xytext=(0, 5), textcoords="offset points",
                        ha="center", fontsize=7)
        ax.set_title(label)
        ax.set_xlabel("layer")
        ax.set_xticks(rows["layer"])
        ax.margins(x=0.1)  # room for the outermost labels
    for ax, (column, _) in zip(axes[:2], KD_TRIO):
        _metric_axis(ax, rows[column], column)
    n_latents = rows["n_latents"].iloc[0]
    axes[2].axhline(n_latents, color="0.5", ls=":", lw=1)
    axes[2].text(rows["layer"].iloc[0], n_latents, " dictionary size", va="bottom", fontsize=7, color="0.4")
    axes[2].set_ylim(0, n_latents * 1.1)
    fig.suptitle(_title(trial, "the three KD quantities per layer"))
    fig.tight_layout()
    style.save(fig, path, provenance)


def l0_vs_mse(data: TrialTables, path: str | Path, provenance=None) -> None:
    """Sparsity against reconstruction per layer: which depths need more dictionary capacity."""
    metrics, trial = data.metrics, data.trial
    style.apply()
    rows = final_rows(metrics)
    fig, ax = plt.subplots(figsize=(5.4, 4.2))
    points = ax.scatter(rows["l0"], rows["mse"], c=rows["layer"], cmap=style.SEQUENTIAL, s=50, edgecolor="k", lw=0.5)
    for _, row in rows.iterrows():
        ax.annotate(f"layer {int(row['layer'])}", (row["l0"], row["mse"]), xytext=(4, 3), textcoords="offset points", fontsize=7)
    ax.margins(x=0.15, y=0.1)  # room for the labels beside the outermost points
    ax.set_xlabel("L0 (active latents per token)")
    ax.set_ylabel("reconstruction MSE")
    fig.colorbar(points, ax=ax, label="layer", ticks=rows["layer"])
    ax.set_title(_title(trial, "L0 vs MSE per layer"))
    style.save(fig, path, provenance)


def predicted_floor(data: TrialTables, path: str | Path, provenance=None) -> None:
    """Predicted loss floor (importance-weighted, share of Σ E[z²]) vs student width, one panel per
    layer so the near-identical curves cannot hide each other, each with its d*_S marked and printed."""
    metrics, floors, trial = data.metrics, data.floors, data.trial
    style.apply()
    rows = final_rows(metrics)
    final = floors.merge(rows[["layer", "snapshot"]], on=["layer", "snapshot"])
    cols = 4
    fig, axes = _layer_panels(len(rows), 2.9, 2.5, max_cols=cols, sharey=True)
    for i, (ax, (_, row)) in enumerate(zip(axes, rows.iterrows())):
        sub = final[final["layer"] == row["layer"]].sort_values("d_student")
        ax.plot(sub["d_student"], sub["floor_refined"] / row["total_mass"], color="C0", lw=1.4)
        ax.axvline(row["dstar"], color="C3", ls="--", lw=1)
        ax.text(row["dstar"], 0.97, f"d*_S = {row['dstar']:.0f} ", ha="right", va="top", fontsize=7, color="C3")
        style.plain_log_axis(ax, "x")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"layer {int(row['layer'])}")
        if i + cols >= len(axes):  # the lowest panel of its column
            ax.set_xlabel("student width d_S")
        if i % cols == 0:
            ax.set_ylabel("predicted floor / Σ E[z²]")
    fig.suptitle(_title(trial, "predicted loss floor vs student width (dashed: critical width d*_S)"))
    fig.tight_layout()
    style.save(fig, path, provenance)


def premium_heatmap(data: TrialTables, path: str | Path, provenance=None) -> None:
    """The paper rendering: balanced diverging palette, bold headers, every number printed."""
    metrics, trial = data.metrics, data.trial
    style.apply()
    matrix = _matrix(metrics)
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(matrix) + 2.3))
    image = _heatmap(ax, matrix, "RdYlBu_r", fontsize=8.5)
    ax.xaxis.tick_top()
    ax.set_xticks(range(len(METRICS)), [label for _, label, _ in METRICS], fontweight="bold")
    ax.set_title(_title(trial, "SAE metrics by layer"), pad=24, fontsize=12, fontweight="bold")
    for r in range(len(matrix) + 1):
        ax.axhline(r - 0.5, color="w", lw=1.5)
    for c in range(len(METRICS) + 1):
        ax.axvline(c - 0.5, color="w", lw=1.5)
    _scale_key(fig, ax, image, pad=0.04)
    style.save(fig, path, provenance)


def professional_heatmap(data: TrialTables, path: str | Path, provenance=None) -> None:
    """Compact, conservative palette for slides; less expressive colour band than the premium one."""
    metrics, trial = data.metrics, data.trial
    style.apply()
    matrix = _matrix(metrics)
    fig, ax = plt.subplots(figsize=(6.4, 0.3 * len(matrix) + 1.8))
    image = _heatmap(ax, matrix, "Blues", fontsize=6.5)
    ax.tick_params(labelsize=7)
    ax.set_title(_title(trial, "metrics by layer"), fontsize=9)
    _scale_key(fig, ax, image, pad=0.15, width=95)
    style.save(fig, path, provenance)


def layer_analysis_heatmap(data: TrialTables, path: str | Path, provenance=None) -> None:
    """The heatmap plus a sidecar of per-layer statistics: dead share and FVU on one zero-based axis."""
    metrics, trial = data.metrics, data.trial
    style.apply()
    matrix = _matrix(metrics)
    rows = final_rows(metrics)
    fig, (ax, side) = plt.subplots(1, 2, figsize=(11.5, 0.45 * len(matrix) + 2.2), width_ratios=[3, 1.2], sharey=True)
    image = _heatmap(ax, matrix, style.SEQUENTIAL)
    y = np.arange(len(rows))
    dead_share = rows["dead"] / rows["n_latents"]
    side.barh(y - 0.2, dead_share, height=0.38, color="C3", label="dead share")
    side.barh(y + 0.2, rows["fvu"], height=0.38, color="C0", label="FVU")
    for yi, (share, fvu) in enumerate(zip(dead_share, rows["fvu"])):
        side.text(share, yi - 0.2, f" {share:.0%}", va="center", fontsize=6.5)
        side.text(fvu, yi + 0.2, " " + FORMATS["fvu"].format(fvu), va="center", fontsize=6.5)  # as in the cells
    side.set_xlim(0, max(1.0, float(rows["fvu"].max()) * 1.25))
    side.set_xlabel("fraction")
    side.legend(loc="lower right", fontsize=7)
    side.grid(axis="y", visible=False)
    ax.set_title(_title(trial, "layer analysis: metrics with per-layer sidecar"))
    fig.tight_layout()
    _scale_key(fig, ax, image, pad=0.15)
    style.save(fig, path, provenance)


def all_layers_small_multiples(data: TrialTables, path: str | Path, provenance=None) -> None:
    """One tile per layer, each bar a metric as a share of its largest value over layers, from zero:
    0.545 against 0.561 reads as 97% against 100%, as it should. Exact values on the bars."""
    metrics, trial = data.metrics, data.trial
    style.apply()
    matrix = _matrix(metrics)
    share = matrix / matrix.abs().max(0).replace(0, 1.0)
    fig, axes = _layer_panels(len(matrix), 2.3, 2.1, max_cols=6, sharey=True)
    colors = plt.get_cmap("tab10")(np.arange(len(METRICS)))
    for i, ax in enumerate(axes):
        ax.bar(range(len(METRICS)), share.iloc[i], color=colors, alpha=0.85)
        for c, value in enumerate(matrix.iloc[i]):
            ax.text(c, 0.03, METRICS[c][2].format(value), rotation=90, ha="center", va="bottom", fontsize=5.5)
        ax.set_title(f"layer {matrix.index[i]}", fontsize=8)
        ax.set_xticks(range(len(METRICS)), [label for _, label, _ in METRICS], rotation=90, fontsize=6.5)
        ax.set_ylim(0, 1.05)
        ax.grid(axis="x", visible=False)
    axes[0].set_ylabel("value / largest layer's value")
    fig.suptitle(_title(trial, "every layer's metric vector (each metric as a share of its largest layer)"))
    fig.tight_layout()
    style.save(fig, path, provenance)


def gradient_heatmap(data: TrialTables, path: str | Path, provenance=None) -> None:
    """The header-image rendering: a warm gradient palette and no numbers, but the cells stay discrete
    (a layer or a metric has no in-between to blur into); numbers are on the premium heatmap."""
    _scaled_card(data, path, provenance, "magma", "metric gradient through depth", annotate=False)


def _value_table(ax, matrix: pd.DataFrame) -> None:
    """The layer × metric values as a plain table (no shading), for when a statistic of them would mislead."""
    ax.axis("off")
    cells = [[fmt.format(v) for v, (_, _, fmt) in zip(row, METRICS)] for row in matrix.to_numpy()]
    table = ax.table(cellText=cells, rowLabels=[f"layer {layer}" for layer in matrix.index],
                     colLabels=[label for _, label, _ in METRICS], loc="center", cellLoc="center")
    table.scale(1, 1.4)


def correlation_heatmap(data: TrialTables, path: str | Path, provenance=None) -> None:
    """Spearman correlation of the metrics across layers: which move together (e.g. α with dead count).
    Below MIN_CORRELATION_POINTS layers ρ is noise, so the figure shows the values instead and says so."""
    metrics, trial = data.metrics, data.trial
    style.apply()
    matrix = _matrix(metrics)
    if len(matrix) < MIN_CORRELATION_POINTS:
        fig, ax = plt.subplots(figsize=(8, 0.3 * len(matrix) + 1.3))
        _value_table(ax, matrix)
        ax.set_title(_title(trial, f"no correlation drawn: {len(matrix)} layers, fewer than the "
                                   f"{MIN_CORRELATION_POINTS} a rank correlation needs;\nthe per-layer values instead"))
        style.save(fig, path, provenance)
        return
    varying = matrix.loc[:, [not scales.constant(matrix[c], FORMATS[c]) for c in matrix.columns]]
    corr = varying.rank().corr()
    labels = [label for column, label, _ in METRICS if column in varying.columns]
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    image = ax.imshow(corr.to_numpy(), cmap=style.DIVERGING, vmin=-1, vmax=1)
    for (r, c), value in np.ndenumerate(corr.to_numpy()):
        ax.text(c, r, f"{value:.2f}", ha="center", va="center", fontsize=7, color="w" if abs(value) > 0.6 else "k")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.grid(False)
    fig.colorbar(image, ax=ax, shrink=0.8, label="Spearman ρ across layers")
    ax.set_title(_title(trial, f"which metrics move together ({len(matrix)} layers; constant metrics left out)"))
    style.save(fig, path, provenance)


def kpi_card(data: TrialTables, path: str | Path, provenance=None) -> None:
    """The headline numbers on one card: mean α, mean L0, total dead, mean d*_S, mean FVU."""
    metrics, trial = data.metrics, data.trial
    rows = final_rows(metrics)
    kpis = [("mean α", f"{rows['alpha'].mean():.3f}"), ("mean L0", f"{rows['l0'].mean():.1f}"),
            ("total dead", f"{int(rows['dead'].sum()):,}"), ("mean d*_S", f"{rows['dstar'].mean():.1f}"),
            ("mean FVU", f"{rows['fvu'].mean():.3g}")]
    fig = plt.figure(figsize=(8, 2.6), facecolor="#10243e")
    fig.text(0.04, 0.83, _title(trial, f"{len(rows)} layers × {int(rows['n_latents'].iloc[0]):,} latents"),
             color="w", fontsize=12, fontweight="bold")
    for i, (label, value) in enumerate(kpis):
        x = 0.04 + i * 0.19
        fig.text(x, 0.42, value, color="#ffd166", fontsize=20, fontweight="bold")
        fig.text(x, 0.25, label, color="#c8d3e0", fontsize=9)
    fig.text(0.04, 0.06, "KD metrics on held-out tokens, final snapshot", color="#8fa3b8", fontsize=7)
    style.save(fig, path, provenance)


def dashboard(data: TrialTables, path: str | Path, provenance=None) -> None:
    """Dark layer × metric grid with hard numbers, plus α (on its metric window) and the dead count
    (from zero) through depth."""
    metrics, trial = data.metrics, data.trial
    matrix = _matrix(metrics)
    rows = final_rows(metrics)
    with plt.style.context("dark_background"):
        style.apply()
        plt.rcParams.update({"axes.grid": False, "figure.facecolor": "#111418", "axes.facecolor": "#111418"})
        fig = plt.figure(figsize=(11, 0.42 * len(matrix) + 4.6))
        grid = fig.add_gridspec(2, 2, height_ratios=[0.42 * len(matrix) + 2, 2.2], hspace=0.5)
        ax = fig.add_subplot(grid[0, :])
        image = _heatmap(ax, matrix, "cividis", text_colors=("k", "w"))
        _scale_key(fig, ax, image, pad=0.2)
        ax.set_title(_title(trial, "dashboard"), loc="left", fontsize=11)
        for idx, (column, label, color) in enumerate([("alpha", "α", "#4cc9f0"), ("dead", "dead latents", "#f72585")]):
            sub = fig.add_subplot(grid[1, idx])
            sub.plot(rows["layer"], rows[column], "o-", color=color, clip_on=False)
            sub.set_title(f"{label} by layer", fontsize=9, loc="left")
            sub.set_xlabel("layer")
            sub.set_xticks(rows["layer"])
            if column == "dead":
                sub.set_ylim(bottom=0, top=max(1.0, float(rows["dead"].max()) * 1.15))
            else:
                _metric_axis(sub, rows[column], column)
        style.save(fig, path, provenance)


def metric_landscape(data: TrialTables, path: str | Path, provenance=None) -> None:
    """Every metric through depth as its own strip, points only at the layers measured: nothing is
    interpolated across metrics or drawn at fractional layers. Each strip's height is the metric's
    axis window, so a few-percent spread stays nearly flat; the printed range is beside each strip."""
    metrics, trial = data.metrics, data.trial
    style.apply()
    matrix = _matrix(metrics)
    layers = matrix.index.to_numpy()
    colors = style.sequential_colors(len(METRICS), "terrain", 0.0, 0.8)
    fig, axes = plt.subplots(len(METRICS), 1, figsize=(7.5, 0.62 * len(METRICS) + 1.2), sharex=True)
    for ax, (column, label, fmt), color in zip(axes, METRICS, colors):
        values = matrix[column].to_numpy()
        flat = scales.constant(values, fmt)
        ax.plot(layers, values, "o-", color="0.25", ms=3.5, lw=1.1, clip_on=False)
        _metric_axis(ax, values, column)
        bottom, top = ax.get_ylim()
        ax.set_ylim(bottom, top)  # frozen, so the fill down to the strip's floor cannot move it
        ax.fill_between(layers, bottom, values, color=scales.NEUTRAL if flat else color, alpha=0.5, lw=0)
        ax.tick_params(axis="y", which="both", left=False, labelleft=False)
        ax.set_ylabel(label, rotation=0, ha="right", va="center")
        shown = [fmt.format(v) for v in (values.min(), values.max())]
        ax.text(1.01, 0.5, f"{shown[0]} (constant)" if flat else f"{shown[0]} – {shown[1]}",
                transform=ax.transAxes, va="center", fontsize=7)
        ax.grid(axis="y", visible=False)
    axes[-1].set_xticks(layers, [str(layer) for layer in layers])
    axes[-1].set_xlabel("layer")
    fig.suptitle(_title(trial, "metric landscape through depth (one strip per metric; its range on the right)"))
    fig.tight_layout()
    fig.text(0.5, 0.0, f"Strip height: the metric's range, widened to at least {scales.MIN_RELATIVE_SPAN:.0%} of its "
             "largest value (log where it spans a decade); grey: constant.", ha="center", va="top", fontsize=7,
             color="0.35")
    style.save(fig, path, provenance)


def metric_vs_tokens(data: TrialTables, path: str | Path, provenance=None) -> None:
    """L0, α, d*_S, MSE and dead count at every snapshot, one line per layer (and model checkpoint)."""
    metrics, trial = data.metrics, data.trial
    style.apply()
    layers = sorted(metrics["layer"].unique())
    ckpts = list(dict.fromkeys(metrics["ckpt"])) if "ckpt" in metrics else [None]
    colors = dict(zip(layers, style.sequential_colors(len(layers))))
    styles = dict(zip(ckpts, ["-", "--", ":", "-."]))
    fig, axes = plt.subplots(1, len(KD_PANELS), figsize=(3.0 * len(KD_PANELS), 3.2))
    for ax, (column, label) in zip(axes, KD_PANELS):
        for ckpt in ckpts:
            for layer in layers:
                sub = metrics[(metrics["layer"] == layer) & ((metrics["ckpt"] == ckpt) if ckpt else True)]
                sub = sub.sort_values("tokens")
                ax.plot(sub["tokens"], sub[column], styles[ckpt], marker="o", ms=3, color=colors[layer],
                        label=f"layer {layer}" + (f" ({ckpt})" if len(ckpts) > 1 else ""))
        _metric_axis(ax, metrics[column], column)
        style.count_axis(ax)
        ax.set_title(label)
        ax.set_xlabel("SAE training tokens")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=7)
    fig.suptitle(_title(trial, "KD metrics across token snapshots"))
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    style.save(fig, path, provenance)


def _compared_axis(ax, column: str, values) -> None:
    """Across trials: log with plain ticks once the values span a decade (ratios read true), else
    from zero (α up to its bound 1), so a 3% difference between trials looks like 3%."""
    if style.spans_decades(values):
        style.plain_log_axis(ax, "y")
    else:
        ax.set_ylim(0, 1.0 if column == "alpha" else max(1.0, float(np.max(values)) * 1.12))


def compare_trials(metrics_by_trial: dict[str, pd.DataFrame], path: str | Path, provenance=None,
                   target_l0: Mapping[str, float] | None = None) -> None:
    """The L1 regimes side by side: L0, α, d*_S, MSE and dead count per layer, on axes that do not
    magnify small differences. References: dashed, the paper's α of each trial (PAPER_ALPHA);
    dotted, the target L0 of each adaptive trial (`target_l0`, from the config)."""
    style.apply()
    colors = {trial: f"C{i}" for i, trial in enumerate(metrics_by_trial)}
    finals = {trial: final_rows(metrics) for trial, metrics in metrics_by_trial.items()}
    fig, axes = plt.subplots(1, len(KD_PANELS), figsize=(3.1 * len(KD_PANELS), 3.4))
    for ax, (column, label) in zip(axes, KD_PANELS):
        for trial, rows in finals.items():
            ax.plot(rows["layer"], rows[column], "o-", color=colors[trial], ms=4)
        _compared_axis(ax, column, np.concatenate([rows[column].to_numpy(float) for rows in finals.values()]))
        ax.set_xticks(sorted({layer for rows in finals.values() for layer in rows["layer"]}))
        ax.set_title(label)
        ax.set_xlabel("layer")
    references = {"alpha": {t: PAPER_ALPHA[t] for t in finals if t in PAPER_ALPHA}, "l0": dict(target_l0 or {})}
    for ax, (column, _) in zip(axes, KD_PANELS):
        for trial, value in references.get(column, {}).items():
            ax.axhline(value, color=colors[trial], ls="--" if column == "alpha" else ":", lw=1.1, alpha=0.9)
    handles = [Line2D([], [], color=colors[t], marker="o", ms=4, label=f"trial {t}") for t in finals]
    if references["alpha"]:
        handles.append(Line2D([], [], color="0.3", ls="--", label="paper's α per trial (" + ", ".join(
            f"{t} {v:g}" for t, v in references["alpha"].items()) + ")"))
    if references["l0"]:
        handles.append(Line2D([], [], color="0.3", ls=":", label="target L0 of the adaptive controller (" + ", ".join(
            f"{t} {v:g}" for t, v in references["l0"].items()) + ")"))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), bbox_to_anchor=(0.5, -0.02))
    fig.suptitle("The L1 regimes side by side (final snapshot, held-out tokens)")
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    style.save(fig, path, provenance)


# Figure name → function, for the figure rule (one per trial, every name in the report).
PER_TRIAL: dict[str, Callable[..., None]] = {
    fn.__name__: fn
    for fn in (training_curves, layer_metric_heatmap, kd_quantities, l0_vs_mse, predicted_floor, premium_heatmap,
               professional_heatmap, layer_analysis_heatmap, all_layers_small_multiples, gradient_heatmap,
               correlation_heatmap, kpi_card, dashboard, metric_landscape, metric_vs_tokens)
}
