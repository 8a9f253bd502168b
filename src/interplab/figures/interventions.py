"""Figures of the four interventions on the grokking runs, each drawn beside its control.

Every per-run function takes the concatenation of that table over runs (a `run` column added to
`interplab.interventions.run`'s tables) and draws one row of panels per run; `stats_panel` takes
the per-run criteria and the stats table of `interplab.interventions.across_runs`.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle
from matplotlib.ticker import NullLocator

from interplab.figures import style
from interplab.interventions.across_runs import METRICS

LAYER_ORDER = ("layer1", "layer2", "layer3", "layer4")
METHOD_LABELS = {"rowspace": "probe row space", "inlp": "INLP", "leace": "LEACE"}
EDIT_COLOR, CONTROL_COLOR, TUMOUR_COLOR = "C3", "0.55", "C0"
NO_EDIT_STYLE = {"color": "0.2", "ls": "--", "lw": 1.0}
CHANCE_STYLE = {"color": "0.6", "ls": ":", "lw": 1.0}


def _rows(n_runs: int, n_cols: int, width: float, height: float, **kwargs):
    fig, axes = plt.subplots(n_runs, n_cols, figsize=(width * n_cols + 0.6, height * n_runs + 1.0), squeeze=False, **kwargs)
    return fig, axes


def _band(ax, x, values: pd.DataFrame, color=CONTROL_COLOR, label="random (range over draws)") -> None:
    """The control's range over draws as a band, its mean as a dashed line."""
    grouped = values.groupby(x)
    ax.fill_between(grouped.size().index, grouped.min(), grouped.max(), color=color, alpha=0.25, lw=0, label=label)
    ax.plot(grouped.size().index, grouped.mean(), color=color, lw=1.2, ls="--", label="random (mean)")


def probe_heatmaps(probes: pd.DataFrame, path: str | Path, provenance=None) -> None:
    """Per run, hospital and tumour probe accuracy over checkpoint × ResNet block; the intervened checkpoint boxed."""
    style.apply()
    runs = sorted(probes["run"].unique())
    n_epochs = probes["epoch"].nunique()
    fig, axes = _rows(len(runs), 2, max(3.2, 0.42 * n_epochs + 1.4), 1.9)
    targets = ("hospital", "tumour")
    for row, run in enumerate(runs):
        for col, target in enumerate(targets):
            ax = axes[row, col]
            sub = probes[(probes["run"] == run) & (probes["target"] == target)]
            grid = sub.pivot(index="layer", columns="epoch", values="accuracy").reindex(LAYER_ORDER)
            chance = float(sub["chance"].iloc[0])
            image = ax.imshow(grid.to_numpy(), aspect="auto", origin="lower", cmap=style.SEQUENTIAL, vmin=chance, vmax=1.0)
            if n_epochs <= 16:
                for (i, j), value in np.ndenumerate(grid.to_numpy()):
                    ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6.5,
                            color="white" if value < chance + 0.6 * (1 - chance) else "black")
            selected = list(grid.columns).index(int(sub.loc[sub["selected"], "epoch"].iloc[0]))
            ax.add_patch(Rectangle((selected - 0.5, -0.5), 1, len(LAYER_ORDER), fill=False, ec="C3", lw=1.6))
            ax.set_xticks(range(len(grid.columns)), [str(e) for e in grid.columns], fontsize=7)
            ax.set_yticks(range(len(LAYER_ORDER)), LAYER_ORDER)
            ax.grid(False)
            ax.set_title(f"{run}: {target} probe (chance {chance:.2f})", fontsize=8.5)
            if row == len(runs) - 1:
                ax.set_xlabel("checkpoint epoch")
            fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02).set_label("held-out accuracy", fontsize=7)
    fig.suptitle("Linear probes over training: where and when is hospital (the shortcut) vs tumour (the task) decodable?\n"
                 "red box: the checkpoint the interventions use", fontsize=9.5)
    fig.tight_layout()
    style.save(fig, path, provenance)


def ablation(table: pd.DataFrame, path: str | Path, provenance=None) -> None:
    """Per run and metric, each erasure method beside random subspaces of the same rank (bar = range over draws)."""
    style.apply()
    runs = sorted(table["run"].unique())
    metrics = [("hospital_probe_acc", "hospital probe, retrained", "hospital_chance"),
               ("tumour_probe_acc", "tumour probe, retrained", "tumour_chance"),
               ("head_ood_acc", "trained head on OOD", None)]
    methods = [m for m in METHOD_LABELS if m in set(table["method"])]
    fig, axes = _rows(len(runs), len(metrics), 3.0, 2.3, sharey=True)
    x = np.arange(len(methods))
    for row, run in enumerate(runs):
        sub = table[table["run"] == run]
        none = sub[sub["method"] == "none"].iloc[0]
        for col, (metric, title, chance) in enumerate(metrics):
            ax = axes[row, col]
            erased = [sub.loc[(sub["method"] == m) & (sub["variant"] == "erased"), metric].item() for m in methods]
            random = [sub.loc[(sub["method"] == m) & (sub["variant"] == "random"), metric] for m in methods]
            mean = np.array([r.mean() for r in random])
            # clipped: when every draw scores the same, the mean can sit a rounding error outside [min, max]
            err = np.clip([[m - r.min() for m, r in zip(mean, random)], [r.max() - m for m, r in zip(mean, random)]], 0, None)
            ax.bar(x - 0.19, erased, 0.36, color=EDIT_COLOR)
            ax.bar(x + 0.19, mean, 0.36, color=CONTROL_COLOR, yerr=err, capsize=2, error_kw={"lw": 0.8})
            ax.axhline(none[metric], **NO_EDIT_STYLE)
            if chance:
                ax.axhline(none[chance], **CHANCE_STYLE)
            if metric == "hospital_probe_acc":
                ax.axhspan(none["hospital_chance_lo"], none["hospital_chance_hi"], color=CHANCE_STYLE["color"], alpha=0.2, lw=0)
            ranks = [int(sub.loc[sub["method"] == m, "rank"].iloc[0]) for m in methods]
            ax.set_xticks(x, [f"{METHOD_LABELS[m]}\nrank {r}" for m, r in zip(methods, ranks)], fontsize=7)
            ax.set_ylim(0, 1.05)
            ax.grid(axis="x", visible=False)
            ax.set_title(f"{run}: {title}" if col == 0 else title, fontsize=8.5)
        axes[row, 0].set_ylabel("accuracy")
    handles = [Patch(color=EDIT_COLOR, label="hospital subspace erased"),
               Patch(color=CONTROL_COLOR, label="random subspace, same rank (bar: range over draws)"),
               Line2D([], [], **NO_EDIT_STYLE, label="no edit"), Line2D([], [], **CHANCE_STYLE, label="chance"),
               Patch(color=CHANCE_STYLE["color"], alpha=0.2, label="95% range of a no-information probe")]
    fig.legend(handles=handles, loc="lower center", ncol=3, bbox_to_anchor=(0.5, 0.0))
    fig.suptitle("Hospital subspace erased vs a random one (erasers and probes fitted on the probe-training "
                 "images, probes scored on held-out images)", fontsize=9.5)
    fig.tight_layout(rect=(0, 0.6 / fig.get_figheight(), 1, 1))  # 0.6 in for the two-row legend
    style.save(fig, path, provenance)


def steering(table: pd.DataFrame, path: str | Path, provenance=None) -> None:
    """Per run: head OOD accuracy and mean |ΔP(tumour)| against strength a, hospital direction vs random band."""
    style.apply()
    runs = sorted(table["run"].unique())
    metrics = [("accuracy", "head OOD accuracy"), ("mean_abs_shift", "mean |ΔP(tumour)| on OOD")]
    fig, axes = _rows(len(runs), len(metrics), 3.6, 2.3)
    for row, run in enumerate(runs):
        sub = table[table["run"] == run]
        along = sub[sub["direction"] == "hospital"].sort_values("strength")
        random = sub[sub["direction"] == "random"]
        first = along.iloc[0]
        for col, (metric, label) in enumerate(metrics):
            ax = axes[row, col]
            _band(ax, random["strength"], random[metric])
            ax.plot(along["strength"], along[metric], "o-", color=EDIT_COLOR, lw=1.6, ms=3.5, label="hospital direction (LDA-1)")
            ax.set_ylabel(label)
            ax.set_xticks(along["strength"])
            if row == len(runs) - 1:
                ax.set_xlabel("steering strength a (h + a·σ·v)")
        axes[row, 0].set_ylim(0, 1.02)
        axes[row, 0].set_title(f"{run}: accuracy {'never rises' if first['monotone'] else 'rises somewhere'} with |a|",
                               fontsize=8.5)
        axes[row, 1].set_title(f"|ΔP| slope {first['slope']:.2g} [95% CI {first['slope_lo']:.2g}, {first['slope_hi']:.2g}];"
                               f" random up to {random.groupby('draw')['slope'].first().max():.2g}", fontsize=8.5)
    handles, labels = axes[0, 1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, bbox_to_anchor=(0.5, 0.0))
    fig.suptitle("Steering along the top between-hospital discriminant vs random directions (σ-scaled alike)", fontsize=9.5)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    style.save(fig, path, provenance)


def neurons(table: pd.DataFrame, path: str | Path, provenance=None) -> None:
    """Per run: head OOD accuracy and retrained probes against K, hospital-selective vs random-K vs tumour-selective."""
    style.apply()
    runs = sorted(table["run"].unique())
    metrics = [("head_ood_acc", "head OOD accuracy"), ("hospital_probe_acc", "hospital probe, retrained"),
               ("tumour_probe_acc", "tumour probe, retrained")]
    fig, axes = _rows(len(runs), len(metrics), 3.0, 2.3, sharey=True)
    for row, run in enumerate(runs):
        sub = table[table["run"] == run]
        random = sub[sub["ranking"] == "random"]
        for col, (metric, label) in enumerate(metrics):
            ax = axes[row, col]
            _band(ax, random["k"], random[metric], label="random K (range over draws)")
            for ranking, color in (("hospital", EDIT_COLOR), ("tumour", TUMOUR_COLOR)):
                line = sub[sub["ranking"] == ranking].sort_values("k")
                ax.plot(line["k"], line[metric], "o-", color=color, lw=1.5, ms=3.5, label=f"top-K {ranking}-selective")
            ax.set_xscale("symlog", linthresh=8)
            ax.xaxis.set_minor_locator(NullLocator())
            ks = sorted(sub["k"].unique())
            ax.set_xticks(ks, [str(k) for k in ks], fontsize=7)
            ax.set_ylim(0, 1.02)
            ax.set_title(f"{run}: {label}" if col == 0 else label, fontsize=8.5)
            if row == len(runs) - 1:
                ax.set_xlabel(f"channels ablated K (of {int(sub['n_channels'].iloc[0])}, {sub['ablation'].iloc[0]}-ablated)")
        axes[row, 0].set_ylabel("accuracy")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, bbox_to_anchor=(0.5, 0.0))
    fig.suptitle("Neuron ablation: layer4 channels ranked by hospital selectivity (ANOVA F) vs controls", fontsize=9.5)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    style.save(fig, path, provenance)


def stats_panel(per_run: pd.DataFrame, table: pd.DataFrame, path: str | Path, provenance=None) -> None:
    """One panel per criterion: every run's metric by regime (filled = criterion met), counts and p-values."""
    style.apply()
    criteria = [c for c in METRICS if c in set(table["criterion"])]
    groups = per_run[["n_train", "regime"]].drop_duplicates().sort_values(["n_train", "regime"]).itertuples(index=False)
    groups = list(groups)
    regimes = sorted(per_run["regime"].unique())
    colors = dict(zip(regimes, style.sequential_colors(len(regimes), "plasma", 0.1, 0.7)))
    n_cols = min(3, len(criteria))
    n_rows = int(np.ceil(len(criteria) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(max(3.4, 0.9 * len(groups) + 1.6) * n_cols, 2.8 * n_rows + 1.3),
                             squeeze=False)
    for ax, criterion in zip(axes.flat, criteria):
        sub = per_run[per_run["criterion"] == criterion]
        for i, (n_train, regime) in enumerate(groups):
            cell = sub[(sub["n_train"] == n_train) & (sub["regime"] == regime)]
            jitter = np.linspace(-0.12, 0.12, len(cell)) if len(cell) > 1 else np.zeros(len(cell))
            for x, (_, r) in zip(i + jitter, cell.iterrows()):
                ax.plot(x, r["metric"], "o", ms=6, mec=colors[regime], mfc=colors[regime] if r["met"] else "white", mew=1.4)
            ax.text(i, 1.0, f"{int(cell['met'].sum())}/{len(cell)} met", transform=ax.get_xaxis_transform(),
                    ha="center", va="bottom", fontsize=7.5)
        ax.axhline(0, color="0.7", lw=0.8, zorder=0)
        ax.set_xticks(range(len(groups)), [f"{regime}\nn={n_train}" for n_train, regime in groups], fontsize=7.5)
        ax.set_xlim(-0.6, len(groups) - 0.4)
        ax.grid(axis="x", visible=False)
        rows = table[table["criterion"] == criterion]
        p_text = "; ".join(f"n={r.n_train}: Fisher p={r.fisher_p_greater:.2f}, MW p={r.mannwhitney_p:.2f}"
                           for r in rows.itertuples())
        ax.set_title(f"{criterion}\n{p_text}", fontsize=8, pad=14)
        ax.set_ylabel(METRICS[criterion], fontsize=7.5)
    for ax in list(axes.flat)[len(criteria):]:
        ax.axis("off")
    handles = [Line2D([], [], ls="", marker="o", mec=c, mfc=c, label=r) for r, c in colors.items()]
    handles.append(Line2D([], [], ls="", marker="o", mec="0.3", mfc="white", label="criterion not met"))
    fig.legend(handles=handles, loc="upper right", ncol=len(handles), bbox_to_anchor=(1.0, 0.965))
    power = table.drop_duplicates("n_train")
    lines = [line for r in power.itertuples() for line in textwrap.wrap(f"n_train={r.n_train}: {r.power}", 170)]
    fig.text(0.01, 0.01, "\n".join(lines), fontsize=7.5, va="bottom")
    fig.suptitle("Interventions across runs: does each criterion separate the regimes? Filled: the run meets it; "
                 "p: one-sided Fisher on counts, exact Mann-Whitney on the metric", x=0.01, ha="left", fontsize=9.5)
    fig.tight_layout(rect=(0, 0.06, 1, 0.93))
    style.save(fig, path, provenance)
