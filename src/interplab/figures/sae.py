"""Experiment 2 figures: per-layer SAE KD metrics for one trial, in every rendering variant.

Every function takes tidy tables and an output path:
- `metrics`: one row per (layer, snapshot) of one model checkpoint, with the KD columns of
  `interplab.kd.KDMetrics.scalars()` plus `layer`, `snapshot`, `tokens` (training tokens seen);
- `floors`: one row per (layer, snapshot, d_student) with `floor_refined` and `floor_naive`;
- `log`: the training log of every layer (`layer`, `tokens`, `mse`, `l1_penalty`, `loss`, `l0`,
  `lambda`, `frac_alive`).
The per-layer figures show the final snapshot; `metric_vs_tokens` shows every snapshot. The seeds
(000/001) give each variant's reason to exist; the report captions repeat it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from interplab.figures import style

# (column, label, number format) of every metric the layer × metric views show.
METRICS = [
    ("l0", "L0", "{:.1f}"),
    ("alpha", "α", "{:.3f}"),
    ("g_alpha", "g(α)", "{:.2f}"),
    ("dstar", "d*_S", "{:.1f}"),
    ("mse", "MSE", "{:.3g}"),
    ("fvu", "FVU", "{:.3f}"),
    ("f_alive", "F alive", "{:.0f}"),
    ("dead", "dead", "{:.0f}"),
]
KD_TRIO = [("alpha", "sparsity α"), ("g_alpha", "capacity g(α)"), ("dstar", "critical width d*_S")]


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


def _column_scaled(matrix: pd.DataFrame) -> np.ndarray:
    """Each metric rescaled to [0, 1] across layers, so one colour scale serves every column."""
    lo, hi = matrix.min(0), matrix.max(0)
    span = (hi - lo).replace(0, 1.0)
    return ((matrix - lo) / span).to_numpy()


def _heatmap(ax, matrix: pd.DataFrame, cmap: str, annotate: bool = True, fontsize: float = 7.5,
             text_colors: tuple[str, str] = ("k", "w"), interpolation: str = "nearest") -> matplotlib.image.AxesImage:
    scaled = _column_scaled(matrix)
    image = ax.imshow(scaled, cmap=cmap, vmin=0, vmax=1, aspect="auto", interpolation=interpolation)
    if annotate:
        cm = plt.get_cmap(cmap)
        for (r, c), value in np.ndenumerate(matrix.to_numpy()):
            lum = np.dot(cm(scaled[r, c])[:3], [0.299, 0.587, 0.114])
            ax.text(c, r, METRICS[c][2].format(value), ha="center", va="center", fontsize=fontsize,
                    color=text_colors[0] if lum > 0.5 else text_colors[1])
    ax.set_xticks(range(len(METRICS)), [label for _, label, _ in METRICS])
    ax.set_yticks(range(len(matrix)), [f"layer {layer}" for layer in matrix.index])
    ax.tick_params(length=0)
    ax.grid(False)
    for spine in ax.spines.values():
        spine.set_visible(False)
    return image


def _title(trial: str, what: str) -> str:
    return f"Trial {trial}: {what}"


def training_curves(data: TrialTables, path: str | Path, provenance=None) -> None:
    """MSE, L1 penalty, total loss, L0, λ and fraction alive against tokens, one line per layer."""
    log, trial = data.log, data.trial
    style.apply()
    panels = [("mse", "reconstruction MSE", True), ("l1_penalty", "λ·L1 penalty", True), ("loss", "total loss", True),
              ("l0", "L0 (active latents / token)", True), ("lambda", "L1 coefficient λ", True),
              ("frac_alive", "fraction alive (window)", False)]
    layers = sorted(log["layer"].unique())
    colors = dict(zip(layers, style.sequential_colors(len(layers))))
    fig, axes = plt.subplots(2, 3, figsize=(11, 5.6))
    for ax, (column, label, logy) in zip(axes.flat, panels):
        for layer in layers:
            sub = log[log["layer"] == layer].sort_values("tokens")
            values = sub[column].to_numpy(dtype=float)
            ax.plot(sub["tokens"], values, color=colors[layer], lw=1.1, label=f"layer {layer}")
        if logy and (log[column] > 0).all():
            ax.set_yscale("log")
        ax.set_title(label)
        ax.set_xlabel("training tokens")
    axes[1, 2].set_ylim(-0.02, 1.02)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(_title(trial, "SAE training curves per layer"))
    fig.tight_layout(rect=(0, 0, 0.93, 1))
    style.save(fig, path, provenance)


def _scaled_card(data: TrialTables, path, provenance, cmap: str, what: str, annotate: bool = True,
                 interpolation: str = "nearest") -> None:
    """One layer × metric heatmap with a colour bar: the base of the plain and the gradient variants."""
    style.apply()
    matrix = _matrix(data.metrics)
    fig, ax = plt.subplots(figsize=(8.2, 0.42 * len(matrix) + 1.4))
    image = _heatmap(ax, matrix, cmap, annotate=annotate, interpolation=interpolation)
    fig.colorbar(image, ax=ax, shrink=0.8, label="level within the column (0 = lowest layer, 1 = highest)")
    ax.set_title(_title(data.trial, what))
    style.save(fig, path, provenance)


def layer_metric_heatmap(data: TrialTables, path: str | Path, provenance=None) -> None:
    """Layer × metric card: shade = value relative to the other layers (per column), numbers exact."""
    _scaled_card(data, path, provenance, style.SEQUENTIAL, "KD metrics per layer (final snapshot)")


def kd_quantities(data: TrialTables, path: str | Path, provenance=None) -> None:
    """α, g(α) and d*_S side by side per layer: the inputs the width prediction needs."""
    metrics, trial = data.metrics, data.trial
    style.apply()
    rows = final_rows(metrics)
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    for ax, (column, label), color in zip(axes, KD_TRIO, ["C0", "C2", "C3"]):
        ax.plot(rows["layer"], rows[column], "o-", color=color)
        ax.set_title(label)
        ax.set_xlabel("layer")
        ax.set_xticks(rows["layer"])
    axes[2].axhline(rows["n_latents"].iloc[0], color="0.5", ls=":", lw=1)
    axes[2].text(rows["layer"].iloc[0], rows["n_latents"].iloc[0], " dictionary size", va="bottom", fontsize=7, color="0.4")
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
    ax.set_xlabel("L0 (active latents per token)")
    ax.set_ylabel("reconstruction MSE")
    fig.colorbar(points, ax=ax, label="layer")
    ax.set_title(_title(trial, "L0 vs MSE per layer"))
    style.save(fig, path, provenance)


def predicted_floor(data: TrialTables, path: str | Path, provenance=None) -> None:
    """Predicted loss floor (importance-weighted, in E[z²] units) vs student width, one line per layer."""
    metrics, floors, trial = data.metrics, data.floors, data.trial
    style.apply()
    rows = final_rows(metrics)
    final = floors.merge(rows[["layer", "snapshot"]], on=["layer", "snapshot"])
    layers = list(rows["layer"])
    colors = dict(zip(layers, style.sequential_colors(len(layers))))
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for layer in layers:
        sub = final[final["layer"] == layer].sort_values("d_student")
        share = sub["floor_refined"] / rows.loc[rows["layer"] == layer, "total_mass"].iloc[0]
        ax.plot(sub["d_student"], share, color=colors[layer], lw=1.3, label=f"layer {layer}")
        dstar = rows.loc[rows["layer"] == layer, "dstar"].iloc[0]
        ax.plot([dstar], [0], marker="|", ms=12, color=colors[layer], clip_on=False)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel("student width d_S (ticks on the axis: each layer's d*_S)")
    ax.set_ylabel("predicted floor / Σ E[z²]")
    ax.set_ylim(-0.02, 1.02)
    ax.legend(ncol=2, loc="upper right")
    ax.set_title(_title(trial, "predicted loss floor vs student width"))
    style.save(fig, path, provenance)


def premium_heatmap(data: TrialTables, path: str | Path, provenance=None) -> None:
    """The paper rendering: balanced diverging palette, bold headers, every number printed."""
    metrics, trial = data.metrics, data.trial
    style.apply()
    matrix = _matrix(metrics)
    fig, ax = plt.subplots(figsize=(9, 0.5 * len(matrix) + 1.6))
    _heatmap(ax, matrix, "RdYlBu_r", fontsize=8.5)
    ax.xaxis.tick_top()
    ax.set_xticks(range(len(METRICS)), [label for _, label, _ in METRICS], fontweight="bold")
    ax.set_title(_title(trial, "SAE metrics by layer"), pad=24, fontsize=12, fontweight="bold")
    for r in range(len(matrix) + 1):
        ax.axhline(r - 0.5, color="w", lw=1.5)
    for c in range(len(METRICS) + 1):
        ax.axvline(c - 0.5, color="w", lw=1.5)
    fig.text(0.5, 0.01, "colour: value relative to the other layers, per column (blue low, red high)",
             ha="center", fontsize=7, color="0.35")
    style.save(fig, path, provenance)


def professional_heatmap(data: TrialTables, path: str | Path, provenance=None) -> None:
    """Compact, conservative palette for slides; less expressive colour band than the premium one."""
    metrics, trial = data.metrics, data.trial
    style.apply()
    matrix = _matrix(metrics)
    fig, ax = plt.subplots(figsize=(6.4, 0.3 * len(matrix) + 1.1))
    _heatmap(ax, matrix, "Blues", fontsize=6.5)
    ax.tick_params(labelsize=7)
    ax.set_title(_title(trial, "metrics by layer"), fontsize=9)
    style.save(fig, path, provenance)


def layer_analysis_heatmap(data: TrialTables, path: str | Path, provenance=None) -> None:
    """The heatmap plus a sidecar of per-layer statistics: dead share, FVU and L0 / d*_S."""
    metrics, trial = data.metrics, data.trial
    style.apply()
    matrix = _matrix(metrics)
    rows = final_rows(metrics)
    fig, (ax, side) = plt.subplots(1, 2, figsize=(11.5, 0.45 * len(matrix) + 1.5), width_ratios=[3, 1.2], sharey=True)
    _heatmap(ax, matrix, style.SEQUENTIAL)
    y = np.arange(len(rows))
    dead_share = rows["dead"] / rows["n_latents"]
    side.barh(y - 0.2, dead_share, height=0.38, color="C3", label="dead share")
    side.barh(y + 0.2, rows["fvu"], height=0.38, color="C0", label="FVU")
    for yi, (share, fvu) in enumerate(zip(dead_share, rows["fvu"])):
        side.text(share, yi - 0.2, f" {share:.0%}", va="center", fontsize=6.5)
        side.text(fvu, yi + 0.2, f" {fvu:.2f}", va="center", fontsize=6.5)
    side.set_xlim(0, max(1.0, float(rows["fvu"].max()) * 1.25))
    side.set_xlabel("fraction")
    side.legend(loc="lower right", fontsize=7)
    side.grid(axis="y", visible=False)
    ax.set_title(_title(trial, "layer analysis: metrics with per-layer sidecar"))
    fig.tight_layout()
    style.save(fig, path, provenance)


def all_layers_small_multiples(data: TrialTables, path: str | Path, provenance=None) -> None:
    """One tile per layer with its whole (column-scaled) metric vector, for show-everything talks."""
    metrics, trial = data.metrics, data.trial
    style.apply()
    matrix = _matrix(metrics)
    scaled = _column_scaled(matrix)
    n = len(matrix)
    cols = min(6, n)
    grid_rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(grid_rows, cols, figsize=(2.3 * cols, 1.9 * grid_rows + 0.6), squeeze=False, sharey=True)
    colors = plt.get_cmap("tab10")(np.arange(len(METRICS)))
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        ax.bar(range(len(METRICS)), scaled[i], color=colors)
        ax.set_title(f"layer {matrix.index[i]}  (L0 {matrix.iloc[i]['l0']:.0f}, α {matrix.iloc[i]['alpha']:.2f})", fontsize=8)
        ax.set_xticks(range(len(METRICS)), [label for _, label, _ in METRICS], rotation=90, fontsize=6.5)
        ax.set_ylim(0, 1.05)
    fig.suptitle(_title(trial, "every layer's metric vector (each metric scaled across layers)"))
    fig.tight_layout()
    style.save(fig, path, provenance)


def gradient_heatmap(data: TrialTables, path: str | Path, provenance=None) -> None:
    """Smoothly interpolated rendering: good as a header, but it blurs exact cell boundaries."""
    _scaled_card(data, path, provenance, "magma", "metric gradient through depth", annotate=False,
                 interpolation="bicubic")


def correlation_heatmap(data: TrialTables, path: str | Path, provenance=None) -> None:
    """Spearman correlation of the metrics across layers: which move together (e.g. α with dead count)."""
    metrics, trial = data.metrics, data.trial
    style.apply()
    matrix = _matrix(metrics)
    varying = matrix.loc[:, matrix.std(0) > 0]
    corr = varying.rank().corr() if len(varying) > 2 else varying.corr() * np.nan
    labels = [label for column, label, _ in METRICS if column in varying.columns]
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    image = ax.imshow(corr.to_numpy(), cmap=style.DIVERGING, vmin=-1, vmax=1)
    for (r, c), value in np.ndenumerate(corr.to_numpy()):
        ax.text(c, r, "–" if np.isnan(value) else f"{value:.2f}", ha="center", va="center", fontsize=7,
                color="w" if abs(value) > 0.6 else "k")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.grid(False)
    fig.colorbar(image, ax=ax, shrink=0.8, label="Spearman ρ across layers")
    ax.set_title(_title(trial, f"which metrics move together ({len(matrix)} layers)"))
    style.save(fig, path, provenance)


def kpi_card(data: TrialTables, path: str | Path, provenance=None) -> None:
    """The headline numbers on one card: mean α, mean L0, total dead, mean d*_S, mean FVU."""
    metrics, trial = data.metrics, data.trial
    rows = final_rows(metrics)
    kpis = [("mean α", f"{rows['alpha'].mean():.3f}"), ("mean L0", f"{rows['l0'].mean():.1f}"),
            ("total dead", f"{int(rows['dead'].sum()):,}"), ("mean d*_S", f"{rows['dstar'].mean():.1f}"),
            ("mean FVU", f"{rows['fvu'].mean():.3f}")]
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
    """Dark layer × metric grid with hard numbers, plus α and dead count through depth."""
    metrics, trial = data.metrics, data.trial
    matrix = _matrix(metrics)
    rows = final_rows(metrics)
    with plt.style.context("dark_background"):
        style.apply()
        plt.rcParams.update({"axes.grid": False, "figure.facecolor": "#111418", "axes.facecolor": "#111418"})
        fig = plt.figure(figsize=(11, 0.42 * len(matrix) + 3.6))
        grid = fig.add_gridspec(2, 2, height_ratios=[0.42 * len(matrix) + 1, 2.2], hspace=0.45)
        ax = fig.add_subplot(grid[0, :])
        _heatmap(ax, matrix, "cividis", text_colors=("k", "w"))
        ax.set_title(_title(trial, "dashboard"), loc="left", fontsize=11)
        for idx, (column, label, color) in enumerate([("alpha", "α", "#4cc9f0"), ("dead", "dead latents", "#f72585")]):
            sub = fig.add_subplot(grid[1, idx])
            sub.plot(rows["layer"], rows[column], "o-", color=color)
            sub.set_title(f"{label} by layer", fontsize=9, loc="left")
            sub.set_xlabel("layer")
            sub.set_xticks(rows["layer"])
            if column == "dead":
                sub.set_ylim(bottom=0, top=max(1.0, float(rows["dead"].max()) * 1.15))
        style.save(fig, path, provenance)


def metric_landscape(data: TrialTables, path: str | Path, provenance=None) -> None:
    """Every metric (scaled across layers) as a continuous surface over depth; quick to scan, qualitative."""
    metrics, trial = data.metrics, data.trial
    style.apply()
    matrix = _matrix(metrics)
    scaled = _column_scaled(matrix).T  # metrics × layers
    layers = matrix.index.to_numpy(dtype=float)
    fig, ax = plt.subplots(figsize=(8, 3.6))
    if len(layers) > 1:
        surface = ax.contourf(layers, np.arange(len(METRICS)), scaled, levels=12, cmap="terrain")
        fig.colorbar(surface, ax=ax, label="within-metric level")
    else:
        ax.imshow(scaled, cmap="terrain", aspect="auto")
    ax.set_yticks(range(len(METRICS)), [label for _, label, _ in METRICS])
    ax.set_xlabel("layer")
    ax.grid(False)
    ax.set_title(_title(trial, "metric landscape through depth"))
    style.save(fig, path, provenance)


def metric_vs_tokens(data: TrialTables, path: str | Path, provenance=None) -> None:
    """L0, α, d*_S, MSE and dead count at every snapshot, one line per layer (and model checkpoint)."""
    metrics, trial = data.metrics, data.trial
    style.apply()
    panels = [("l0", "L0"), ("alpha", "α"), ("dstar", "d*_S"), ("mse", "MSE"), ("dead", "dead latents")]
    layers = sorted(metrics["layer"].unique())
    ckpts = list(dict.fromkeys(metrics["ckpt"])) if "ckpt" in metrics else [None]
    colors = dict(zip(layers, style.sequential_colors(len(layers))))
    styles = dict(zip(ckpts, ["-", "--", ":", "-."]))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.2))
    for ax, (column, label) in zip(axes, panels):
        for ckpt in ckpts:
            for layer in layers:
                sub = metrics[(metrics["layer"] == layer) & ((metrics["ckpt"] == ckpt) if ckpt else True)]
                sub = sub.sort_values("tokens")
                ax.plot(sub["tokens"], sub[column], styles[ckpt], marker="o", ms=3, color=colors[layer],
                        label=f"layer {layer}" + (f" ({ckpt})" if len(ckpts) > 1 else ""))
        ax.set_title(label)
        ax.set_xlabel("SAE training tokens")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=7)
    fig.suptitle(_title(trial, "KD metrics across token snapshots"))
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    style.save(fig, path, provenance)


def compare_trials(metrics_by_trial: dict[str, pd.DataFrame], path: str | Path, provenance=None) -> None:
    """The three L1 regimes side by side: L0, α, d*_S, MSE and dead count per layer."""
    style.apply()
    panels = [("l0", "L0"), ("alpha", "α"), ("dstar", "d*_S"), ("mse", "MSE"), ("dead", "dead latents")]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.0 * len(panels), 3.3))
    for (trial, metrics), color in zip(metrics_by_trial.items(), ["C0", "C1", "C2", "C3", "C4"]):
        rows = final_rows(metrics)
        for ax, (column, label) in zip(axes, panels):
            ax.plot(rows["layer"], rows[column], "o-", color=color, label=f"trial {trial}")
            ax.set_title(label)
            ax.set_xlabel("layer")
    for ax, (column, _) in zip(axes, panels):
        if column in ("l0", "mse"):
            ax.set_yscale("log")
        if column == "dead":
            ax.set_ylim(bottom=0, top=max(1.0, ax.get_ylim()[1]))
    axes[0].legend()
    fig.suptitle("The L1 regimes side by side (final snapshot, held-out tokens)")
    fig.tight_layout()
    style.save(fig, path, provenance)


# Figure name → function, for the figure rule (one per trial, every name in the report).
PER_TRIAL: dict[str, Callable[..., None]] = {
    fn.__name__: fn
    for fn in (training_curves, layer_metric_heatmap, kd_quantities, l0_vs_mse, predicted_floor, premium_heatmap,
               professional_heatmap, layer_analysis_heatmap, all_layers_small_multiples, gradient_heatmap,
               correlation_heatmap, kpi_card, dashboard, metric_landscape, metric_vs_tokens)
}
