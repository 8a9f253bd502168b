"""Fit, generalisation, delay, peak and final of each run's held-out accuracy curve, and its label.

Grokking is delayed generalisation, so the labels are defined by times on the curve, with the
thresholds as config keys (`grok.classification`):

- fit epoch F: the first epoch with train accuracy ≥ `fit_threshold`;
- generalisation epoch G: the first epoch with held-out accuracy ≥ `heldout_threshold`;
- delay: G − F (the grokking delay), and delay / F (how many fitting times it lasts).

Each run gets exactly one label, checked in this order:

- ungrokked: final held-out accuracy at least `drop_tolerance` below its peak (peak, then decay);
- grokked: it fitted, and G comes at least `min_delay[task]` epochs (steps for the modular
  control) after F;
- no delay: it generalised, but not that long after fitting (or never fitted);
- never generalised: held-out accuracy never reached `heldout_threshold`.

For Camelyon17 the held-out split is the OOD hospital; for the modular-addition control it is
the held-out pairs (`test`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from interplab.grok.checkpoints import HISTORY, manifest
from interplab.grok.runs import CAMELYON, MODULAR, spec_from_dict
from interplab.io import read_table

GROKKED, UNGROKKED, NO_DELAY, NEVER = "grokked", "ungrokked", "no delay", "never generalised"
LABELS = (GROKKED, UNGROKKED, NO_DELAY, NEVER)


@dataclass(frozen=True)
class Criteria:
    fit_threshold: float = 0.99
    heldout_threshold: float = 0.95
    drop_tolerance: float = 0.05
    min_delay: Mapping[str, int] = field(default_factory=lambda: {CAMELYON: 3, MODULAR: 500})


def _first(mask: np.ndarray, epochs: np.ndarray) -> float:
    hits = np.flatnonzero(mask)
    return float(epochs[hits[0]]) if len(hits) else np.nan


def curve_summary(history: pd.DataFrame, heldout: str, criteria: Criteria, task: str) -> dict:
    """Fit / generalisation epochs, delay, peak / final held-out accuracy and the label of one run's history."""
    min_delay = criteria.min_delay[task]
    history = history.sort_values("epoch")
    epochs = history["epoch"].to_numpy()
    acc = history[f"{heldout}_acc"].to_numpy()
    train_acc = history["train_acc"].to_numpy()
    peak = int(np.argmax(acc))  # first epoch at the maximum
    fit = _first(train_acc >= criteria.fit_threshold, epochs)
    generalise = _first(acc >= criteria.heldout_threshold, epochs)
    delay = generalise - fit
    drop = float(acc[peak] - acc[-1])
    if drop >= criteria.drop_tolerance:
        label = UNGROKKED
    elif np.isnan(generalise):
        label = NEVER
    elif delay >= min_delay:
        label = GROKKED
    else:
        label = NO_DELAY
    return {
        "epochs": int(epochs[-1]),
        "fit_epoch": fit,
        "generalise_epoch": generalise,
        "delay": delay,
        "delay_over_fit": delay / fit if fit > 0 else np.nan,
        "min_delay": min_delay,
        "peak_ood_epoch": int(epochs[peak]),
        "peak_ood_acc": float(acc[peak]),
        "final_ood_acc": float(acc[-1]),
        "ood_drop": drop,
        "final_train_acc": float(train_acc[-1]),
        "final_id_acc": float(history["id_acc"].iloc[-1]) if "id_acc" in history else np.nan,
        "classification": label,
    }


def load_histories(run_dirs) -> pd.DataFrame:
    """Every run's history.csv in one long table, tagged with run, task, regime, n_train, seed, heldout_split."""
    frames = []
    for run_dir in map(Path, run_dirs):
        spec = spec_from_dict(manifest(run_dir)["spec"])
        history = read_table(run_dir / HISTORY)
        frames.append(history.assign(run=spec.name, task=spec.task, regime=spec.regime.name, seed=spec.seed,
                                     n_train=getattr(spec.setup, "n_train", pd.NA), heldout_split=spec.heldout_split))
    return pd.concat(frames, ignore_index=True)


def summarize(histories: pd.DataFrame, criteria: Criteria) -> pd.DataFrame:
    """One row per run of `load_histories`' table: identifiers plus `curve_summary`."""
    rows = []
    for run, history in histories.groupby("run", sort=True):
        first = history.iloc[0]
        rows.append({"run": run, **{k: first[k] for k in ("task", "regime", "n_train", "seed", "heldout_split")},
                     **curve_summary(history.dropna(axis=1, how="all"), first["heldout_split"], criteria,
                                     first["task"])})
    return pd.DataFrame(rows).astype({"n_train": "Int64", "fit_epoch": "Int64", "generalise_epoch": "Int64",
                                      "delay": "Int64"})
