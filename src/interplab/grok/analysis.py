"""Peak, final and classification of each run's held-out accuracy curve.

The reference study found no grokking on Camelyon17: every run "ungrokked", its OOD accuracy
peaking early and decaying. So each run is classified from its history, by criteria that are
config keys (`grok.classification`):

- ungrokked: final held-out accuracy is at least `drop_tolerance` below its peak (peak, then decay);
- grokked: the model first fits its training set (train accuracy ≥ `fit_threshold` at the fit
  epoch), held-out accuracy then rises by at least `min_gain` above its value at the fit epoch,
  and it keeps that gain to the end (not ungrokked);
- neither: anything else (no fit, no delayed rise, or a rise that coincides with fitting).

For Camelyon17 the held-out split is the OOD hospital; for the modular-addition control it is
the held-out pairs (`test`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from interplab.grok.checkpoints import HISTORY, manifest
from interplab.grok.runs import spec_from_dict
from interplab.io import read_table

GROKKED, UNGROKKED, NEITHER = "grokked", "ungrokked", "neither"


@dataclass(frozen=True)
class Criteria:
    fit_threshold: float = 0.99
    min_gain: float = 0.1
    drop_tolerance: float = 0.05


def curve_summary(history: pd.DataFrame, heldout: str, criteria: Criteria) -> dict:
    """Fit epoch, peak / final held-out accuracy and the classification of one run's history."""
    history = history.sort_values("epoch")
    epochs = history["epoch"].to_numpy()
    acc = history[f"{heldout}_acc"].to_numpy()
    train_acc = history["train_acc"].to_numpy()
    peak = int(np.argmax(acc))  # first epoch at the maximum
    fitted = np.flatnonzero(train_acc >= criteria.fit_threshold)
    fit = int(fitted[0]) if len(fitted) else None
    gain_after_fit = float(acc[fit:].max() - acc[fit]) if fit is not None else np.nan
    generalise_epoch = np.nan
    if fit is not None:
        rose = np.flatnonzero(acc[fit:] >= acc[fit] + criteria.min_gain)
        generalise_epoch = int(epochs[fit + rose[0]]) if len(rose) else np.nan
    drop = float(acc[peak] - acc[-1])
    if drop >= criteria.drop_tolerance:
        label = UNGROKKED
    elif not np.isnan(generalise_epoch):
        label = GROKKED
    else:
        label = NEITHER
    return {
        "epochs": int(epochs[-1]),
        "fit_epoch": int(epochs[fit]) if fit is not None else np.nan,
        "generalise_epoch": generalise_epoch,
        "peak_ood_epoch": int(epochs[peak]),
        "peak_ood_acc": float(acc[peak]),
        "final_ood_acc": float(acc[-1]),
        "ood_drop": drop,
        "gain_after_fit": gain_after_fit,
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
                     **curve_summary(history.dropna(axis=1, how="all"), first["heldout_split"], criteria)})
    return pd.DataFrame(rows).astype({"n_train": "Int64"})
