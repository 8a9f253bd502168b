"""Experiments 3–4 figures: measured vs predicted distillation floors, and probe accuracy vs width."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from interplab.figures import style


def floor_fit(floors: pd.DataFrame, curves: pd.DataFrame, path: str | Path, provenance=None) -> None:
    """Left: each width's measured floor (mean ± seed half-range) against the SAE's refined floor, with
    the affine fit. Right: both against width on their own axes, d*_S marked, and the held-out curves
    the measured floors come from (inset scale: nats)."""
    style.apply()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.9))
    row = floors.iloc[0]
    colors = dict(zip(floors["width"], style.sequential_colors(len(floors))))
    for r in floors.itertuples():
        left.errorbar(r.floor_refined, r.floor_mean, yerr=r.floor_spread, fmt="o", color=colors[r.width], ms=6,
                      capsize=3)
        left.annotate(f"d_S={r.width}", (r.floor_refined, r.floor_mean), textcoords="offset points", xytext=(6, 4),
                      fontsize=7)
    if np.isfinite(row.fit_a):
        xs = np.linspace(floors["floor_refined"].min(), floors["floor_refined"].max(), 50)
        loo = f"{row.loo_rmse:.3g} nats" if np.isfinite(row.loo_rmse) else "n/a (needs 3+ widths)"
        left.plot(xs, row.fit_a * xs + row.fit_b, color="0.4", ls="--", lw=1,
                  label=f"L_obs = {row.fit_a:.3g}·L_geo + {row.fit_b:.3g}\nR² {row.fit_r2:.3f}, "
                        f"leave-one-out RMSE {loo}\nSpearman ρ {row.spearman_rho:.2f}")
        left.legend(loc="upper left")
    else:
        left.text(0.02, 0.95, "predicted floors do not vary: no affine fit", transform=left.transAxes, va="top")
    left.set_xlabel("predicted refined floor Σ_dropped E[z²] (teacher SAE units)")
    left.set_ylabel("measured floor: held-out KD loss (nats / token)")
    left.set_title("Measured vs predicted floor (one point per student width)")

    for width, curve in curves.groupby("width"):
        for _, seed_curve in curve.groupby("seed"):
            right.plot(seed_curve["step"], seed_curve["heldout_loss"], color=colors.get(width, "0.5"), lw=1,
                       label=f"d_S={width}" if seed_curve["seed"].iloc[0] == curve["seed"].min() else None)
    style.value_axis(right, curves["heldout_loss"])
    right.set_xlabel("student training step")
    right.set_ylabel("held-out KD loss (nats / token)")
    right.set_title(f"Held-out loss per width; floors = mean of the last evaluations\n"
                    f"teacher SAE: α {row.sae_alpha:.3f}, F_alive {int(row.sae_f_alive)}, d*_S {row.sae_dstar:.0f}")
    right.legend(loc="upper right", ncol=2)
    fig.tight_layout()
    style.save(fig, path, provenance)


def probe_accuracy(probes: pd.DataFrame, teacher: str, path: str | Path, provenance=None) -> None:
    """Per concept, probe accuracy (Wilson 95% interval) against student width; the teacher as a
    star at its own width, the shuffled-label control dashed, chance at 0.5."""
    style.apply()
    concepts = list(dict.fromkeys(probes["concept"]))
    fig, axes = plt.subplots(1, len(concepts), figsize=(3.4 * len(concepts), 3.4), sharey=True, squeeze=False)
    for ax, concept in zip(axes[0], concepts):
        rows = probes[probes["concept"] == concept]
        students = rows[rows["model"] != teacher].groupby("width")
        mean = students[["accuracy", "ci_low", "ci_high", "shuffled_accuracy"]].mean().reset_index()
        ax.errorbar(mean["width"], mean["accuracy"], yerr=[mean["accuracy"] - mean["ci_low"],
                                                           mean["ci_high"] - mean["accuracy"]],
                    fmt="o-", color=style.sequential_colors(2)[0], capsize=3, label="students")
        ax.plot(mean["width"], mean["shuffled_accuracy"], "x--", color="0.5", label="shuffled labels")
        top = rows[rows["model"] == teacher]
        ax.plot(top["width"], top["accuracy"], "*", ms=12, color="tab:red", label="teacher")
        ax.axhline(0.5, color="0.3", ls=":", lw=1)
        ax.set_xscale("log", base=2)
        ticks = sorted(set(rows["width"]))
        ax.set_xticks(ticks, [str(t) for t in ticks])
        ax.set_ylim(min(0.3, float(rows[["ci_low", "shuffled_accuracy"]].min().min()) - 0.05), 1.02)
        ax.set_xlabel("hidden width d_S")
        ax.set_title(concept)
    axes[0][0].set_ylabel("held-out probe accuracy")
    axes[0][0].legend(loc="lower right")
    fig.suptitle("Linear probes at the same relative depth: which concepts survive compression")
    fig.tight_layout()
    style.save(fig, path, provenance)
