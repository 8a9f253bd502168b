"""Grokking-stage figures: accuracy curves per run and per regime, the ungrokking overview,
weight norms per parameter group, and the modular-addition positive control.

Every function takes the long history table of `interplab.grok.analysis.load_histories` (and the
summary where it needs peaks and labels) and writes one PNG.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.ticker import MaxNLocator

from interplab.figures import style
from interplab.grok.analysis import GROKKED, NEVER, NO_DELAY, UNGROKKED

SPLIT_STYLE = {"train": ("0.35", ":", "train"), "id": ("C0", "--", "ID (training hospitals)"),
               "ood": ("C3", "-", "OOD (held-out hospital)"), "test": ("C3", "-", "held-out pairs")}
CLASS_COLORS = {GROKKED: "C2", UNGROKKED: "C3", NO_DELAY: "C0", NEVER: "0.5"}


def _regime_colors(regimes) -> dict:
    return dict(zip(sorted(regimes), style.sequential_colors(len(regimes), "plasma", 0.1, 0.7)))


def _epoch_axis(ax, max_epoch: int) -> None:
    """Log-like x axis (symlog, linear below 1) once runs are long enough for early change to hide."""
    if max_epoch >= 100:
        ax.set_xscale("symlog", linthresh=1)
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlim(0, max_epoch)


def accuracy_curves(histories: pd.DataFrame, summary: pd.DataFrame, path: str | Path, provenance=None) -> None:
    """One panel per Camelyon17 run: train / ID / OOD accuracy per epoch, the peak OOD epoch marked."""
    style.apply()
    cam = histories[histories["task"] == "camelyon17"]
    runs = sorted(cam["run"].unique())
    n_cols = min(4, len(runs))
    n_rows = int(np.ceil(len(runs) / n_cols))
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.1 * n_cols + 0.4, 2.5 * n_rows + 0.9), squeeze=False,
                             sharey=True)
    for ax, run in zip(axes.flat, runs):
        h = cam[cam["run"] == run].sort_values("epoch")
        row = summary[summary["run"] == run].iloc[0]
        for split in ("train", "id", "ood"):
            color, ls, _ = SPLIT_STYLE[split]
            ax.plot(h["epoch"], h[f"{split}_acc"], ls=ls, color=color, lw=1.4)
        ax.axvline(row["peak_ood_epoch"], color=CLASS_COLORS[row["classification"]], lw=0.9, alpha=0.7)
        ax.plot(row["peak_ood_epoch"], row["peak_ood_acc"], "o", color="C3", ms=4)
        ax.axhline(0.5, color="0.7", lw=0.8, zorder=0)
        _epoch_axis(ax, int(h["epoch"].max()))
        ax.set_title(f"{run}\n{row['classification']}: OOD peak {row['peak_ood_acc']:.2f} → final "
                     f"{row['final_ood_acc']:.2f}", fontsize=8.5)
        ax.set_ylim(0.3, 1.02)
        ax.set_xlabel("epoch")
    for ax in axes[:, 0]:
        ax.set_ylabel("accuracy")
    for ax in list(axes.flat)[len(runs):]:
        ax.axis("off")
    handles = [Line2D([], [], color=c, ls=ls, label=label) for c, ls, label in (SPLIT_STYLE[s] for s in ("train", "id", "ood"))]
    handles.append(Line2D([], [], color="0.5", lw=0.9, label="peak OOD epoch (colour = classification)"))
    fig.legend(handles=handles, loc="lower center", ncol=4, bbox_to_anchor=(0.5, 0.0))
    fig.suptitle("Camelyon17 runs: does OOD accuracy rise late (grokking) or peak early and decay (ungrokking)?")
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    style.save(fig, path, provenance)


def regime_curves(histories: pd.DataFrame, path: str | Path, provenance=None) -> None:
    """One panel per training-set size: OOD accuracy per regime (mean over seeds, band = seed range), ID dashed."""
    style.apply()
    cam = histories[histories["task"] == "camelyon17"]
    sizes = sorted(cam["n_train"].unique())
    colors = _regime_colors(cam["regime"].unique())
    fig, axes = plt.subplots(1, len(sizes), figsize=(3.6 * len(sizes) + 0.6, 3.2), squeeze=False, sharey=True)
    for ax, n_train in zip(axes[0], sizes):
        sub = cam[cam["n_train"] == n_train]
        for regime, color in colors.items():
            r = sub[sub["regime"] == regime]
            if r.empty:
                continue
            ood = r.groupby("epoch")["ood_acc"].agg(["mean", "min", "max"])
            n_seeds = r["seed"].nunique()
            ax.fill_between(ood.index, ood["min"], ood["max"], color=color, alpha=0.2, lw=0)
            ax.plot(ood.index, ood["mean"], color=color, lw=1.6, label=f"{regime} OOD ({n_seeds} seed{'s' * (n_seeds > 1)})")
            ax.plot(ood.index, r.groupby("epoch")["id_acc"].mean(), color=color, lw=1.0, ls="--")
        ax.axhline(0.5, color="0.7", lw=0.8, zorder=0)
        _epoch_axis(ax, int(sub["epoch"].max()))
        ax.set_title(f"n_train = {n_train}")
        ax.set_xlabel("epoch")
        ax.set_ylim(0.3, 1.02)
        ax.legend(loc="lower right")
    axes[0, 0].set_ylabel("accuracy (solid OOD, dashed ID)")
    fig.suptitle("Regimes compared: OOD accuracy, mean over seeds (band = seed range)")
    fig.tight_layout()
    style.save(fig, path, provenance)


def ungrokking_overview(summary: pd.DataFrame, path: str | Path, provenance=None) -> None:
    """Every run as a peak → final OOD-accuracy arrow at its peak epoch, coloured by classification."""
    style.apply()
    rows = summary.sort_values(["task", "regime", "n_train", "seed"]).reset_index(drop=True)
    fig, ax = plt.subplots(figsize=(7.2, 0.38 * len(rows) + 1.6))
    for i, row in rows.iterrows():
        color = CLASS_COLORS[row["classification"]]
        ax.annotate("", xy=(row["final_ood_acc"], i), xytext=(row["peak_ood_acc"], i),
                    arrowprops={"arrowstyle": "->", "color": color, "lw": 1.6, "shrinkA": 0, "shrinkB": 0})
        ax.plot(row["peak_ood_acc"], i, "o", color=color, ms=6)
        ax.text(1.02, i, f"peak at epoch {int(row['peak_ood_epoch'])} of {int(row['epochs'])}", va="center",
                fontsize=7.5, transform=ax.get_yaxis_transform())
    ax.set_yticks(range(len(rows)), rows["run"])
    ax.invert_yaxis()
    ax.axvline(0.5, color="0.7", lw=0.8, zorder=0)
    lo = min(0.4, float(rows[["peak_ood_acc", "final_ood_acc"]].min().min()) - 0.03)
    ax.set_xlim(lo, 1.02)  # room for a dot at 1.0 before the labels
    ax.set_xlabel("held-out accuracy (OOD hospital; held-out pairs for modadd): dot = peak, arrow head = final")
    ax.grid(axis="y", visible=False)
    handles = [Line2D([], [], color=c, marker="o", lw=1.6, label=k) for k, c in CLASS_COLORS.items()]
    ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(0, 1.0), ncol=3)
    ax.set_title("Ungrokking overview: how far each run's held-out accuracy falls from its peak", pad=22)
    fig.tight_layout()
    style.save(fig, path, provenance)


def weight_norms(histories: pd.DataFrame, path: str | Path, provenance=None) -> None:
    """Per parameter group (conv / bn / fc), the weight norm of every Camelyon17 run against epoch."""
    style.apply()
    cam = histories[histories["task"] == "camelyon17"]
    groups = [g for g in ("conv", "bn", "fc") if f"norm_{g}" in cam]
    colors = _regime_colors(cam["regime"].unique())
    fig, axes = plt.subplots(1, len(groups), figsize=(3.3 * len(groups) + 0.5, 3.0), squeeze=False)
    for ax, group in zip(axes[0], groups):
        for run, h in cam.groupby("run"):
            ax.plot(h["epoch"], h[f"norm_{group}"], color=colors[h["regime"].iloc[0]], lw=1.2, alpha=0.85)
        style.value_axis(ax, cam[f"norm_{group}"])
        _epoch_axis(ax, int(cam["epoch"].max()))
        ax.set_title({"conv": "conv weights", "bn": "BatchNorm γ, β", "fc": "fc head"}[group])
        ax.set_xlabel("epoch")
    axes[0, 0].set_ylabel("L2 norm")
    fig.legend(handles=[Line2D([], [], color=c, label=r) for r, c in colors.items()], loc="upper right", ncol=len(colors))
    fig.suptitle("Weight norm per parameter group (BatchNorm makes the conv norm scale-free)", x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    style.save(fig, path, provenance)


def modular_control(histories: pd.DataFrame, summary: pd.DataFrame, path: str | Path, provenance=None) -> None:
    """Modular addition with and without Grokfast: train / held-out accuracy and total weight norm per step.

    The step axis is logarithmic so that fitting (early) and generalisation (late) are both visible;
    each run's fit step (train ≥ fit threshold) and generalisation step (held-out ≥ its threshold) are
    marked and the delay between them is written in the legend.
    """
    style.apply()
    mod = histories[histories["task"] == "modular_addition"]
    fig, (acc_ax, norm_ax) = plt.subplots(1, 2, figsize=(10.0, 4.6), gridspec_kw={"width_ratios": [1.6, 1]})
    if mod.empty:
        for ax in (acc_ax, norm_ax):
            ax.text(0.5, 0.5, "modular-addition control disabled in config", ha="center", va="center", transform=ax.transAxes)
    colors = {"plain": "C0", "grokfast": "C1"}
    for run, h in mod.groupby("run"):
        h = h[h["epoch"] > 0]  # log axis: step 0 (the initial model) cannot be drawn
        color = colors[h["regime"].iloc[0]]
        row = summary[summary["run"] == run].iloc[0]
        acc_ax.plot(h["epoch"], h["train_acc"], color=color, ls=":", lw=1.4)
        delay = (f"fit at {row['fit_epoch']:.0f}, generalised at {row['generalise_epoch']:.0f}: "
                 f"delay {row['delay']:.0f} ({row['delay_over_fit']:.1f}× the fit)"
                 if pd.notna(row["delay"]) else "never generalised")
        acc_ax.plot(h["epoch"], h["test_acc"], color=color, lw=1.7, label=f"{run} ({row['classification']})\n{delay}")
        for step, ls in ((row["fit_epoch"], ":"), (row["generalise_epoch"], "-")):
            if pd.notna(step):
                acc_ax.axvline(step, color=color, ls=ls, lw=0.9, alpha=0.7)
        norm_ax.plot(h["epoch"], h["norm_total"], color=color, lw=1.4, label=run)
    acc_ax.axhline(0.95, color="0.6", lw=0.8, ls="--")
    for ax in (acc_ax, norm_ax):
        if not mod.empty:
            style.count_axis(ax, "x", log=True)
    acc_ax.set(xlabel="full-batch step (log)", ylabel="accuracy (dotted train, solid held-out)", ylim=(-0.02, 1.02),
               title="accuracy; vertical lines: fit (dotted) and generalisation (solid) steps")
    norm_ax.set(xlabel="full-batch step (log)", ylabel="total weight norm", title="weight norm (weight decay shrinks it)")
    acc_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.17), fontsize=7.5, ncol=2, frameon=False)
    norm_ax.legend(loc="upper right", fontsize=7)
    fig.suptitle("Positive control: modular addition, with and without Grokfast: does held-out accuracy rise long after fitting?")
    fig.tight_layout()
    style.save(fig, path, provenance)
