"""Experiment 1 figures: the toy models against the KD minimum-width theorem.

Losses are shown as a share of ε∞ = Σ_i I_i·E[t_i²] (the loss of a width-0 model that outputs
zero), so curves for different F and α share one scale from 0 to about 1.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from interplab.figures import style


def _teacher_label(teacher_width: int) -> str:
    return "direct (no teacher)" if teacher_width < 0 else f"teacher d_T = {teacher_width}"


def _log_width_axis(ax) -> None:
    """Log-scaled width axis labelled with plain integers (1, 2, 5, 10, …), not powers of ten."""
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())


def _grid(n_rows: int, n_cols: int, w: float = 2.6, h: float = 2.2, **kw):
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(w * n_cols + 0.8, h * n_rows + 0.8), squeeze=False, **kw)
    return fig, axes


def loss_floor_curves(curves: pd.DataFrame, summary: pd.DataFrame, path: str | Path, provenance=None) -> None:
    """fig1: measured loss vs student width per (F, α), with the predicted floors and d*_S."""
    style.apply()
    features = sorted(curves["n_features"].unique())
    alphas = sorted(curves["alpha"].unique())
    teachers = sorted(curves["teacher_width"].unique())
    colors = dict(zip(teachers, style.sequential_colors(len(teachers), "plasma", 0.1, 0.75))) if len(teachers) > 1 \
        else {teachers[0]: "C0"}
    fig, axes = _grid(len(features), len(alphas), sharey=True)
    for i, n_features in enumerate(features):
        for j, alpha in enumerate(alphas):
            ax = axes[i, j]
            for teacher in teachers:
                sel = (curves["n_features"] == n_features) & (curves["alpha"] == alpha) & (curves["teacher_width"] == teacher)
                c = curves[sel].sort_values("student_width")
                if c.empty:
                    continue
                scale = c["target_mass"].to_numpy()
                color = colors[teacher]
                x = c["student_width"].to_numpy()
                ax.fill_between(x, c["loss_min"] / scale, c["loss_max"] / scale, color=color, alpha=0.18, lw=0)
                ax.plot(x, c["loss_mean"] / scale, "o-", color=color, ms=2.5, lw=1.3)
                ax.plot(x, c["pred_floor_refined"] / scale, "--", color=color, lw=1.0)
                ax.plot(x, c["pred_floor_naive"] / scale, ":", color="0.45", lw=1.0)
                row = summary[(summary["n_features"] == n_features) & (summary["alpha"] == alpha)
                              & (summary["teacher_width"] == teacher)].iloc[0]
                ax.axvline(row["predicted_critical_width"], color=color, lw=0.9, alpha=0.8)
                at = c[c["student_width"] == row["measured_critical_width"]]
                ax.plot(at["student_width"], at["loss_mean"] / at["target_mass"], marker="D", ms=7, mfc="none",
                        mec=color, mew=1.6, ls="")
            _log_width_axis(ax)
            ax.set_ylim(-0.02, 1.02)
            if i == 0:
                ax.set_title(f"α = {alpha:g}")
            if j == 0:
                ax.set_ylabel(f"F = {n_features}\nloss / ε∞")
            if i == len(features) - 1:
                ax.set_xlabel("student width d_S")
    handles = [Line2D([], [], color="k", marker="o", ms=3, label="measured (mean; band = seed range)"),
               Line2D([], [], color="k", ls="--", label="refined floor (importance-weighted)"),
               Line2D([], [], color="0.45", ls=":", label="naive floor"),
               Line2D([], [], color="k", lw=0.9, label="predicted critical width d*_S"),
               Line2D([], [], color="k", marker="D", mfc="none", ls="", label="measured critical width")]
    if len(teachers) > 1:
        handles += [Line2D([], [], color=colors[t], lw=3, label=_teacher_label(t)) for t in teachers]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 5), bbox_to_anchor=(0.5, -0.02))
    mode = "students reconstruct x" if teachers == [-1] else "students distilled from a teacher"
    fig.suptitle(f"Toy-model loss vs student width ({mode}): does the loss reach its floor where the KD theorem says?")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    style.save(fig, path, provenance)


def config_heatmap(summary: pd.DataFrame, path: str | Path, provenance=None) -> None:
    """fig5: every (α, F[, d_T]) configuration, coloured by how well the theory predicts it.

    Top row: accuracy of the refined floor curve (1 = exact). Bottom row: measured / predicted
    critical width on a log colour scale centred on 1, so over- and under-prediction read apart.
    """
    style.apply()
    summary = summary.assign(width_ratio=summary["measured_critical_width"] / summary["predicted_critical_width"])
    rows = [
        ("floor_accuracy_refined", "floor-curve accuracy\n(refined)", plt.get_cmap(style.SEQUENTIAL).copy(),
         matplotlib.colors.Normalize(0, 1), "{:.2f}", "accuracy (1 = exact)"),
        ("width_ratio", "critical width\nmeasured / predicted", plt.get_cmap(style.DIVERGING).copy(),
         matplotlib.colors.LogNorm(1 / 16, 16), "{:.1f}×", "ratio (1 = exact)"),
    ]
    teachers = sorted(summary["teacher_width"].unique())
    alphas = sorted(summary["alpha"].unique())
    features = sorted(summary["n_features"].unique())
    cell_w, cell_h = 0.62, 0.42
    fig, axes = _grid(len(rows), len(teachers), w=cell_w * len(features) + 1.2, h=cell_h * len(alphas) + 1.0)
    for i, (metric, label, cmap, norm, fmt, bar_label) in enumerate(rows):
        cmap.set_bad("0.88")
        image = None
        for j, teacher in enumerate(teachers):
            ax = axes[i, j]
            sub = summary[summary["teacher_width"] == teacher]
            values = sub.pivot(index="alpha", columns="n_features", values=metric).reindex(index=alphas, columns=features)
            values = values.to_numpy(dtype=float)
            image = ax.imshow(values, cmap=cmap, norm=norm, aspect="auto")
            for (r, c), value in np.ndenumerate(values):
                text = "n/a" if np.isnan(value) else fmt.format(value)
                shade = np.nan if np.isnan(value) else norm(value)
                dark_cell = not np.isnan(shade) and (shade < 0.45 if metric != "width_ratio" else abs(shade - 0.5) > 0.3)
                ax.text(c, r, text, ha="center", va="center", fontsize=8, color="w" if dark_cell else "k")
            ax.set_xticks(range(len(features)), [str(f) for f in features])
            ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
            ax.grid(False)
            ax.set_xlabel("features F")
            if j == 0:
                ax.set_ylabel(f"{label}\n\nsparsity α")
            if i == 0:
                ax.set_title(_teacher_label(teacher))
        bar = fig.colorbar(image, ax=list(axes[i]), shrink=0.9, label=bar_label, pad=0.03)
        if metric == "width_ratio":
            ticks = [1 / 16, 1 / 4, 1, 4, 16]
            bar.set_ticks(ticks, labels=["1/16", "1/4", "1", "4", "16"])
            bar.minorticks_off()
    fig.suptitle("How well the KD theorem predicts each toy configuration\n(grey n/a: theory predicts no floor at any swept width)")
    style.save(fig, path, provenance)


def floor_vs_dstar(per_seed: pd.DataFrame, summary: pd.DataFrame, path: str | Path, provenance=None) -> None:
    """fig8: measured critical width vs predicted d*_S for every run; agreement puts points on y = x."""
    style.apply()
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    alphas = sorted(summary["alpha"].unique())
    features = sorted(summary["n_features"].unique())
    colors = dict(zip(alphas, style.sequential_colors(len(alphas))))
    markers = dict(zip(features, "osD^vP*X"))
    rng = np.random.default_rng(0)
    jitter = np.exp(rng.uniform(-0.06, 0.06, len(per_seed)))  # separate coincident seeds on the log axis
    ax.scatter(per_seed["predicted_critical_width"] * jitter, per_seed["measured_critical_width"],
               s=8, c=[colors[a] for a in per_seed["alpha"]], alpha=0.35, lw=0)
    for _, row in summary.iterrows():
        ax.scatter(row["predicted_critical_width"], row["measured_critical_width"], s=46, color=colors[row["alpha"]],
                   marker=markers[row["n_features"]], edgecolor="k", lw=0.6, zorder=3)
    lo = 0.7 * min(per_seed["predicted_critical_width"].min(), per_seed["measured_critical_width"].min())
    hi = 1.4 * max(per_seed["predicted_critical_width"].max(), per_seed["measured_critical_width"].max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=1, label="y = x (theory exact)")
    _log_width_axis(ax)
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("predicted critical width d*_S = F / g(α)")
    ax.set_ylabel("measured critical width (loss within tolerance of its floor)")
    log_err = np.log(summary["measured_critical_width"] / summary["predicted_critical_width"])
    ax.set_title(f"Measured vs predicted critical width\nmedian measured/predicted = {np.exp(np.median(log_err)):.2f}×")
    handles = [Line2D([], [], color=colors[a], marker="o", ls="", label=f"α = {a:g}") for a in alphas]
    handles += [Line2D([], [], color="0.5", marker=markers[f], mec="k", ls="", label=f"F = {f}") for f in features]
    handles += [Line2D([], [], color="k", ls="--", label="y = x"),
                Line2D([], [], color="0.5", marker="o", ms=3, alpha=0.5, ls="", label="single seed")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1))
    style.save(fig, path, provenance)


def sparsity_effect(curves: pd.DataFrame, path: str | Path, provenance=None, max_widths: int = 6) -> None:
    """fig9: at each student width, how the loss (share of ε∞) changes as α rises."""
    style.apply()
    features = sorted(curves["n_features"].unique())
    teachers = sorted(curves["teacher_width"].unique())
    fig, axes = _grid(len(teachers), len(features), w=3.6, h=2.4, sharey=True)
    for i, teacher in enumerate(teachers):
        for j, n_features in enumerate(features):
            ax = axes[i, j]
            sub = curves[(curves["n_features"] == n_features) & (curves["teacher_width"] == teacher)]
            widths = sorted(sub["student_width"].unique())
            if len(widths) > max_widths:
                widths = [widths[k] for k in np.unique(np.linspace(0, len(widths) - 1, max_widths).round().astype(int))]
            for color, width in zip(style.sequential_colors(len(widths)), widths):
                c = sub[sub["student_width"] == width].sort_values("alpha")
                ax.plot(range(len(c)), c["loss_mean"] / c["target_mass"], "o-", color=color, ms=3, label=f"d_S = {width}")
                ax.set_xticks(range(len(c)), [f"{a:g}" for a in c["alpha"]])
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"F = {n_features}" + ("" if len(teachers) == 1 else f", {_teacher_label(teacher)}"))
            ax.set_xlabel("sparsity α")
            if j == 0:
                ax.set_ylabel("loss / ε∞")
            ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, handlelength=1.2)
    fig.suptitle("Sparsity effect: loss share at fixed student width as α rises (theory: it falls, since g(α) grows)")
    fig.tight_layout()
    style.save(fig, path, provenance)
