"""Experiment 1 figures: the toy models against the KD minimum-width theorem.

Losses are shown as a share of ε∞ = Σ_i I_i·E[t_i²] (the loss of a width-0 model that outputs
zero), so curves for different F and α share one scale from 0 to about 1.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from interplab.figures import style


def _teacher_label(teacher_width: int) -> str:
    return "direct (no teacher)" if teacher_width < 0 else f"teacher d_T = {teacher_width}"


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
                ax.plot(x, c["pred_floor_capacity"] / scale, "-.", color=color, lw=1.0, alpha=0.8)
                row = summary[(summary["n_features"] == n_features) & (summary["alpha"] == alpha)
                              & (summary["teacher_width"] == teacher)].iloc[0]
                ax.axvline(row["predicted_critical_width"], color=color, lw=0.9, alpha=0.8)
                at = c[c["student_width"] == row["measured_critical_width"]]
                ax.plot(at["student_width"], at["loss_mean"] / at["target_mass"], marker="D", ms=7, mfc="none",
                        mec=color, mew=1.6, ls="")
            style.plain_log_axis(ax, "x")
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
               Line2D([], [], color="k", ls="-.", label="measured-capacity floor (c(α) for g(α))"),
               Line2D([], [], color="k", lw=0.9, label="predicted critical width d*_S"),
               Line2D([], [], color="k", marker="D", mfc="none", ls="", label="measured critical width")]
    if len(teachers) > 1:
        handles += [Line2D([], [], color=colors[t], lw=3, label=_teacher_label(t)) for t in teachers]
    mode = "students reconstruct x" if teachers == [-1] else "students distilled from a teacher"
    fig.suptitle(f"Toy-model loss vs student width ({mode}): does the loss reach its floor where the KD theorem says?")
    fig.tight_layout()
    fig.legend(handles=handles, loc="upper center", ncol=min(len(handles), 3), bbox_to_anchor=(0.5, 0.0))
    style.save(fig, path, provenance)


def config_heatmap(summary: pd.DataFrame, path: str | Path, provenance=None) -> None:
    """fig5: every (α, F) configuration, one column of panels per teacher width d_T, coloured by how well
    the theory predicts it.

    Rows: median accuracy 1 − |measured − predicted|/predicted of the refined, naive and
    measured-capacity floors over the (seed, width) points where the prediction is nonzero, each
    cell annotated with that point count n; last, measured / predicted critical width on a log
    colour scale centred on 1, so over- and under-prediction read apart.
    """
    style.apply()
    summary = summary.assign(width_ratio=summary["measured_critical_width"] / summary["predicted_critical_width"])
    accuracy = (plt.get_cmap(style.SEQUENTIAL).copy(), matplotlib.colors.Normalize(0, 1), "accuracy (1 = exact)")
    rows = [
        ("floor_accuracy_refined", "refined floor\naccuracy", *accuracy),
        ("floor_accuracy_naive", "naive floor\naccuracy", *accuracy),
        ("floor_accuracy_measured_capacity", "measured-capacity\nfloor accuracy", *accuracy),
        ("width_ratio", "critical width\nmeasured / predicted", plt.get_cmap(style.DIVERGING).copy(),
         matplotlib.colors.LogNorm(1 / 16, 16), "ratio (1 = exact)"),
    ]
    teachers = sorted(summary["teacher_width"].unique())
    alphas = sorted(summary["alpha"].unique())
    features = sorted(summary["n_features"].unique())
    cell_w, cell_h = 0.78, 0.5
    fig, axes = _grid(len(rows), len(teachers), w=cell_w * len(features) + 1.3, h=cell_h * len(alphas) + 1.0)
    height = fig.get_figheight()
    fig.subplots_adjust(top=1 - 0.6 / height)  # the title sits just above the panels (saved with a tight box)
    for i, (metric, label, cmap, norm, bar_label) in enumerate(rows):
        cmap.set_bad("0.88")
        image = None
        for j, teacher in enumerate(teachers):
            ax = axes[i, j]
            sub = summary[summary["teacher_width"] == teacher]
            values = sub.pivot(index="alpha", columns="n_features", values=metric).reindex(index=alphas, columns=features)
            counts = None if metric == "width_ratio" else sub.pivot(
                index="alpha", columns="n_features", values=metric + "_n").reindex(index=alphas, columns=features)
            values = values.to_numpy(dtype=float)
            image = ax.imshow(values, cmap=cmap, norm=norm, aspect="auto")
            for (r, c), value in np.ndenumerate(values):
                if np.isnan(value):
                    text, dark_cell = "n/a", False
                else:
                    shade = norm(value)
                    text = f"{value:.1f}×" if metric == "width_ratio" else f"{value:.2f}"
                    dark_cell = abs(shade - 0.5) > 0.3 if metric == "width_ratio" else shade < 0.45
                if counts is not None and not np.isnan(value):
                    text += f"\nn={int(counts.iloc[r, c])}"
                ax.text(c, r, text, ha="center", va="center", fontsize=7, linespacing=0.95,
                        color="w" if dark_cell else "k")
            ax.set_xticks(range(len(features)), [str(f) for f in features])
            ax.set_yticks(range(len(alphas)), [f"{a:g}" for a in alphas])
            ax.grid(False)
            if i == len(rows) - 1:
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
    title = ("How well the KD theorem predicts each toy configuration (n = seed × width points with a nonzero "
             "prediction behind each median; grey n/a: the floor predicts 0 at every swept width)")
    fig.suptitle(textwrap.fill(title, width=45 * len(teachers) + 10), y=1 - 0.2 / height, va="bottom")
    style.save(fig, path, provenance)


def floor_vs_dstar(per_seed: pd.DataFrame, summary: pd.DataFrame, path: str | Path, provenance=None) -> None:
    """fig8: measured vs predicted critical width per configuration; agreement puts markers on y = x.

    Marker: the critical width of the seed-mean curve; vertical bar: the 10th–90th percentile of
    the seeds' own critical widths. Teacher widths are nudged apart along x, since capping at d_T
    makes several configurations share one predicted width.
    """
    style.apply()
    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    alphas = sorted(summary["alpha"].unique())
    features = sorted(summary["n_features"].unique())
    teachers = sorted(summary["teacher_width"].unique())
    colors = dict(zip(alphas, style.sequential_colors(len(alphas))))
    markers = dict(zip(features, "osD^vP*X"))
    nudge = dict(zip(teachers, np.exp(np.linspace(-0.08, 0.08, len(teachers))) if len(teachers) > 1 else [1.0]))
    keys = ["n_features", "alpha", "teacher_width"]
    spread = per_seed.groupby(keys)["measured_critical_width"].quantile([0.1, 0.9]).unstack()
    for _, row in summary.iterrows():
        x = row["predicted_critical_width"] * nudge[row["teacher_width"]]
        lo, hi = spread.loc[tuple(row[k] for k in keys)]
        color = colors[row["alpha"]]
        ax.plot([x, x], [lo, hi], color=color, lw=1.4, alpha=0.7, solid_capstyle="butt")
        ax.scatter(x, row["measured_critical_width"], s=40, color=color, marker=markers[row["n_features"]],
                   edgecolor="k", lw=0.6, zorder=3)
    lo = 0.7 * min(per_seed["predicted_critical_width"].min(), per_seed["measured_critical_width"].min())
    hi = 1.4 * max(per_seed["predicted_critical_width"].max(), per_seed["measured_critical_width"].max())
    ax.plot([lo, hi], [lo, hi], "k--", lw=1)
    style.plain_log_axis(ax, "x")
    style.plain_log_axis(ax, "y")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("predicted critical width d*_S = F / g(α)" + ("" if teachers == [-1] else ", capped at d_T"))
    ax.set_ylabel("measured critical width (loss within tolerance of its floor)")
    ratio = np.exp(np.median(np.log(summary["measured_critical_width"] / summary["predicted_critical_width"])))
    n_seeds = int(per_seed.groupby(keys)["seed"].nunique().max())
    ax.set_title(f"Measured vs predicted critical width ({len(summary)} configurations, {n_seeds} seeds each)\n"
                 f"median measured / predicted = {ratio:.2f}×")
    handles = [Line2D([], [], color=colors[a], marker="o", ls="", label=f"α = {a:g}") for a in alphas]
    handles += [Line2D([], [], color="0.5", marker=markers[f], mec="k", ls="", label=f"F = {f}") for f in features]
    handles += [Line2D([], [], color="k", ls="--", label="y = x (theory exact)"),
                Line2D([], [], color="0.4", lw=1.4, label="seeds' 10–90% range")]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.02, 1))
    style.save(fig, path, provenance)


def sparsity_trend(curves: pd.DataFrame, width: int, flat: float = 0.02) -> dict[str, int]:
    """Panels (F, d_T) whose loss share at `width` rises, falls or stays within `flat` (share of ε∞)
    from the smallest to the largest α."""
    counts = {"rises": 0, "falls": 0, "flat": 0}
    for _, sub in curves[curves["student_width"] == width].groupby(["n_features", "teacher_width"]):
        share = (sub["loss_mean"] / sub["target_mass"]).to_numpy()[np.argsort(sub["alpha"].to_numpy())]
        if len(share) > 1:
            change = share[-1] - share[0]
            counts["flat" if abs(change) <= flat else "rises" if change > 0 else "falls"] += 1
    return counts


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
            if widths:
                ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, handlelength=1.2)
    width = int(curves["student_width"].min())
    trend = sparsity_trend(curves, width)
    verdict = ", ".join(f"{word} in {n}" for word, n in sorted(trend.items(), key=lambda kv: -kv[1]) if n)
    fig.suptitle(f"Sparsity effect: from the smallest to the largest α, the loss share at d_S = {width} {verdict} of "
                 f"{sum(trend.values())} panels\n(flat: within 0.02 of ε∞; theory: it falls at every width, since g(α) grows)")
    fig.tight_layout()
    style.save(fig, path, provenance)
