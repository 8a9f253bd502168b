"""Seed 003's figures: dictionaries of several sizes on one layer (interplab.sae.sizes' tables).

- mmcs_vs_size: MMCS-with-larger against the dictionary size, over all features and over the alive
  ones, with the same count of random directions scored against the same larger dictionary.
- mcs_histograms: per size, the distribution of its alive features' MCS with the next larger
  dictionary against the random baseline's; Sarle's bimodality coefficient printed per panel.
- neuron_basis: each alive feature's effective number of basis directions, (‖w‖₁/‖w‖₂)², against
  random directions (1 + (d−1)·2/π expected), split by whether the next larger dictionary found it again.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FixedLocator, NullLocator

from interplab.figures import style
from interplab.sae.sizes import BIMODAL, MCS_MATCH, random_expectation

LEARNED, RANDOM = "C0", "0.55"


def _size_axis(ax, sizes) -> None:
    """Dictionary sizes on a log-2 axis, each size a tick with its plain number."""
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_locator(FixedLocator(list(sizes)))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xticklabels([str(int(s)) for s in sizes])
    ax.set_xlabel("dictionary size F")


def mmcs_vs_size(sizes: pd.DataFrame, layer: int, path: str | Path, provenance=None) -> None:
    """MMCS-with-larger and the share of alive features found again (MCS > 0.9) against F."""
    style.apply()
    compared = sizes.dropna(subset=["larger_size"]).sort_values("size")
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.7))
    ax = axes[0]
    ax.plot(compared["size"], compared["mmcs_alive"], "o-", color=LEARNED, label="alive features")
    ax.plot(compared["size"], compared["mmcs_with_larger"], "s--", color=LEARNED, alpha=0.6, mfc="white",
            label="all features (dead included)")
    ax.plot(compared["size"], compared["random_mmcs"], "^:", color=RANDOM, label="random directions")
    for row in compared.itertuples():
        ax.annotate(f"{row.mmcs_alive:.2f}", (row.size, row.mmcs_alive), textcoords="offset points", xytext=(0, 6),
                    ha="center", fontsize=7.5)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("MMCS with the next larger dictionary")
    ax.set_title("MMCS-with-larger")
    ax.legend(loc="lower right")
    ax = axes[1]
    ax.bar(np.arange(len(compared)), compared["share_matched"], color=LEARNED, width=0.6)
    for i, row in enumerate(compared.itertuples()):
        ax.text(i, row.share_matched + 0.02, f"{row.n_matched} of {row.n_alive}", ha="center", fontsize=7.5)
    ax.set_xticks(np.arange(len(compared)), [str(int(s)) for s in compared["size"]])
    ax.set_xlabel("dictionary size F")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel(f"share of alive features with MCS > {MCS_MATCH}")
    ax.set_title("Features the next larger dictionary finds again")
    _size_axis(axes[0], compared["size"])
    fig.suptitle(f"Layer {layer}: do dictionaries of different sizes find the same features? "
                 "(one λ, L1 summed over latents)")
    fig.tight_layout()
    style.save(fig, path, provenance)


def mcs_histograms(sizes: pd.DataFrame, features: pd.DataFrame, layer: int, path: str | Path,
                   provenance=None) -> None:
    """One panel per size compared: its alive features' MCS (bars) against random directions' (outline)."""
    style.apply()
    compared = sizes.dropna(subset=["larger_size"]).sort_values("size")
    n = len(compared)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.7 * cols + 0.6, 2.5 * rows + 0.7), squeeze=False, sharex=True)
    bins = np.linspace(0, 1, 41)
    for ax, row in zip(axes.flat, compared.itertuples()):
        of_size = features[features["size"] == row.size]
        learned = of_size[(of_size["kind"] == "learned") & of_size["alive"]]["mcs_with_larger"]
        random = of_size[of_size["kind"] == "random"]["mcs_with_larger"]
        ax.hist(learned, bins=bins, color=LEARNED, alpha=0.85, label="alive features")
        ax.hist(random, bins=bins, histtype="step", color=RANDOM, lw=1.2, label="random directions")
        ax.axvline(MCS_MATCH, color="0.3", ls=":", lw=0.8)
        verdict = "bimodal" if row.bimodal else "not bimodal"
        ax.set_title(f"F {int(row.size)} vs {int(row.larger_size)}\nBC {row.bimodality:.2f} ({verdict})", fontsize=9)
        ax.set_xlabel("MCS with the larger dictionary")
        ax.set_ylabel("features")
    for ax in list(axes.flat)[n:]:
        ax.set_visible(False)
    axes.flat[0].legend(loc="upper left")
    fig.suptitle(f"Layer {layer}: max cosine similarity of each feature with the next larger dictionary; "
                 f"BC = Sarle's bimodality coefficient (> {BIMODAL:.3f} suggests two modes)", fontsize=9.5)
    fig.tight_layout()
    style.save(fig, path, provenance)


def neuron_basis(sizes: pd.DataFrame, features: pd.DataFrame, layer: int, path: str | Path, provenance=None) -> None:
    """Effective number of basis directions per alive feature (box per size), found-again features apart
    from the rest, against random directions; the dimension and a random direction's expectation dotted."""
    style.apply()
    ordered = sizes.sort_values("size")
    d = int(ordered["d_in"].iloc[0])
    fig, ax = plt.subplots(figsize=(8.4, 3.9))
    drawn = []  # (values, x position, colour) of every non-empty box
    for i, row in enumerate(ordered.itertuples()):
        of_size = features[features["size"] == row.size]
        live = of_size[(of_size["kind"] == "learned") & of_size["alive"]]
        found = live["mcs_with_larger"] > MCS_MATCH
        parts = [(live[found], LEARNED), (live[~found], "C1"), (of_size[of_size["kind"] == "random"], RANDOM)]
        drawn += [(part["effective_dims"].to_numpy(), 4 * i + j, colour)
                  for j, (part, colour) in enumerate(parts) if len(part)]
    boxes = ax.boxplot([g for g, _, _ in drawn], positions=[p for _, p, _ in drawn], widths=0.8, patch_artist=True,
                       showfliers=False, medianprops={"color": "black"})
    for patch, (_, _, colour) in zip(boxes["boxes"], drawn):
        patch.set_facecolor(colour)
        patch.set_alpha(0.75)
    ax.set_xticks([4 * i + 1 for i in range(len(ordered))], [f"F {int(s)}" for s in ordered["size"]])
    expected = random_expectation(d)
    for level, label in ((d, f" d = {d}"), (expected, f" random: 1 + (d−1)·2/π = {expected:.1f}")):
        ax.axhline(level, color="0.35", ls=":", lw=0.9)
        ax.text(ax.get_xlim()[1], level, label, va="center", fontsize=7.5, color="0.35")
    ax.set_ylim(0, d * 1.08)
    ax.set_ylabel("effective basis directions (‖w‖₁/‖w‖₂)²")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c, alpha=0.75) for c in (LEARNED, "C1", RANDOM)]
    ax.legend(handles, [f"found again (MCS > {MCS_MATCH})", "not found again (or largest size)", "random directions"],
              loc="lower right", ncol=3)
    ax.set_title(f"Layer {layer}: are features sparse in the residual stream's basis? (1 = one basis direction)")
    fig.tight_layout()
    style.save(fig, path, provenance)
