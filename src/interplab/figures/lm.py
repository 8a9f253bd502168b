"""Experiment 2 teacher figure: did the local teacher learn more than token frequencies?"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import matplotlib.pyplot as plt
import pandas as pd

from interplab.figures import style


def teacher_loss(history: pd.DataFrame, summary: Mapping[str, Any], path: str | Path, provenance=None) -> None:
    """Training and held-out loss against tokens seen, with the unigram entropy and ln(vocab) lines
    and every saved checkpoint labelled (the revisions a cache can study)."""
    style.apply()
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    train = history.dropna(subset=["train_loss"])
    held = history.dropna(subset=["heldout_loss"])
    held = held[held["tokens"] > 0]
    ax.plot(train["tokens"], train["train_loss"], color="0.55", lw=1.2, label="training loss (one batch)")
    ax.plot(held["tokens"], held["heldout_loss"], "o-", color=style.sequential_colors(3)[0], ms=4,
            label="held-out loss at each checkpoint")
    for tokens, loss, step in zip(held["tokens"], held["heldout_loss"], held["step"]):
        final = step == summary["steps"]  # the final point sits right beside the last scheduled one
        ax.annotate("final" if final else f"step{int(step)}", (tokens, loss), textcoords="offset points",
                    xytext=(2, -13) if final else (6, 3), ha="left", fontsize=7, color="0.3")
    ax.axhline(summary["unigram_entropy"], color="tab:red", ls="--", lw=1,
               label=f"unigram entropy {summary['unigram_entropy']:.2f} nats (frequency-only model)")
    ax.axhline(math.log(summary["vocab_size"]), color="0.3", ls=":", lw=1,
               label=f"ln(vocab) {math.log(summary['vocab_size']):.2f} nats (uniform guess)")
    style.count_axis(ax, log=True)
    ax.margins(x=0.08)
    ax.set_xlabel("training tokens seen")
    ax.set_ylabel("cross-entropy (nats / token)")
    ax.set_title(f"{summary['model']}: held-out loss {summary['final_heldout_loss']:.2f} nats, "
                 f"{summary['unigram_entropy'] - summary['final_heldout_loss']:.2f} below unigram entropy")
    ax.legend(loc="lower left")
    style.save(fig, path, provenance)
