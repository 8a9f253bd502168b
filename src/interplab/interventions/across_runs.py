"""From every run's four tables to the study's question: do grokking-favourable runs differ from standard ones?

Each run is scored on five criteria, each a continuous metric with a threshold stated in config
(`interventions.criteria`), so a run either meets it or not:

- hospital_probe_drop: the layer4 hospital probe falls from its best checkpoint to the last by at
  least `probe_drop` (the reference's M1 hypothesis: the shortcut fades as the model generalises);
- erasure_helps_ood: erasing the hospital subspace (`erasure_method`) raises the head's OOD accuracy
  by at least `erasure_min_gain` over random subspaces of the same rank (M4, with its control);
- steering_monotone: the head's OOD accuracy never rises as |a| grows along the hospital direction
  (the reference's M5 criterion; metric: accuracy lost at the largest |a|);
- steering_beats_random: the lower bootstrap bound of the hospital direction's |ΔP| slope exceeds
  every random direction's slope (the control M5 lacked; metric: slope minus mean random slope);
- neuron_ablation_helps: ablating the top `neuron_k` hospital-selective channels raises the head's
  OOD accuracy by at least `neuron_min_gain` over random-K ablation (M6).

Per criterion and training-set size, `stats_table` counts the runs meeting it in the treatment and
control regimes and tests the difference (Fisher exact on counts, Mann-Whitney and a bootstrap
interval on the metric), with the plain-language power line from `stats.power_statement`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from interplab.grok.checkpoints import manifest
from interplab.grok.runs import spec_from_dict
from interplab.interventions import stats
from interplab.interventions.run import HEAD_LAYER
from interplab.io import stable_seed

DESCRIPTIONS = {
    "hospital_probe_drop": "layer4 hospital probe falls from its best checkpoint to the last",
    "erasure_helps_ood": "erasing the hospital subspace raises head OOD accuracy over random subspaces",
    "steering_monotone": "head OOD accuracy never rises with |a| along the hospital direction",
    "steering_beats_random": "hospital-direction |dP| slope CI lies above every random direction's slope",
    "neuron_ablation_helps": "ablating hospital-selective channels raises head OOD accuracy over random-K",
}
METRICS = {
    "hospital_probe_drop": "layer4 hospital probe: best − last checkpoint",
    "erasure_helps_ood": "head OOD acc: erased − random subspace",
    "steering_monotone": "head OOD acc lost at the largest |a|",
    "steering_beats_random": "|ΔP| slope: hospital − mean random",
    "neuron_ablation_helps": "head OOD acc: top-K hospital − random-K",
}


@dataclass(frozen=True)
class Criteria:
    probe_drop: float = 0.05
    erasure_method: str = "leace"
    erasure_min_gain: float = 0.01
    neuron_k: int = 64
    neuron_min_gain: float = 0.01


def _probe_drop(probes: pd.DataFrame) -> float:
    curve = probes[(probes["target"] == "hospital") & (probes["layer"] == HEAD_LAYER)].sort_values("epoch")
    return float(curve["accuracy"].max() - curve["accuracy"].iloc[-1])


def _erasure_gain(ablation: pd.DataFrame, method: str) -> float:
    rows = ablation[ablation["method"] == method]
    erased = rows.loc[rows["variant"] == "erased", "head_ood_acc"].item()
    return float(erased - rows.loc[rows["variant"] == "random", "head_ood_acc"].mean())


def _steering(steering: pd.DataFrame) -> tuple[float, bool, float, bool]:
    """(accuracy lost at max |a|, monotone, slope − mean random slope, slope CI above every random slope)."""
    along = steering[steering["direction"] == "hospital"]
    per_random = steering[steering["direction"] == "random"].groupby("draw")["slope"].first()
    max_strength = along["strength"].abs().max()
    drop = float(along.loc[along["strength"] == 0, "accuracy"].mean()
                 - along.loc[along["strength"].abs() == max_strength, "accuracy"].mean())
    slope, slope_lo = along["slope"].iloc[0], along["slope_lo"].iloc[0]
    return drop, bool(along["monotone"].iloc[0]), float(slope - per_random.mean()), bool(slope_lo > per_random.max())


def _neuron_gain(neurons: pd.DataFrame, k: int) -> float:
    k = min(k, int(neurons["n_channels"].iloc[0]))  # neuron_k beyond the channel count means all of them
    at_k = neurons[neurons["k"] == k]
    if at_k.empty:
        raise ValueError(f"interventions.criteria.neuron_k {k} is not among the ablated K {sorted(neurons['k'].unique())}; "
                         "add it to interventions.neuron_k")
    hospital = at_k.loc[at_k["ranking"] == "hospital", "head_ood_acc"].item()
    return float(hospital - at_k.loc[at_k["ranking"] == "random", "head_ood_acc"].mean())


def run_criteria(tables: Mapping[str, pd.DataFrame], criteria: Criteria) -> pd.DataFrame:
    """One row per criterion for one run: its metric and whether the run meets the criterion."""
    drop = _probe_drop(tables["probes"])
    erasure_gain = _erasure_gain(tables["ablation"], criteria.erasure_method)
    steer_drop, monotone, slope_gain, beats_random = _steering(tables["steering"])
    neuron_gain = _neuron_gain(tables["neurons"], criteria.neuron_k)
    rows = [
        ("hospital_probe_drop", drop, drop >= criteria.probe_drop),
        ("erasure_helps_ood", erasure_gain, erasure_gain >= criteria.erasure_min_gain),
        ("steering_monotone", steer_drop, monotone),
        ("steering_beats_random", slope_gain, beats_random),
        ("neuron_ablation_helps", neuron_gain, neuron_gain >= criteria.neuron_min_gain),
    ]
    return pd.DataFrame([{"criterion": name, "metric": metric, "met": bool(met)} for name, metric, met in rows])


def stats_table(per_run: pd.DataFrame, treatment: str, control: str, alpha: float = 0.05,
                n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per criterion and n_train: counts in each regime, Fisher exact, Mann-Whitney, bootstrap CI, power line.

    `per_run` has columns run, regime, n_train, criterion, metric, met (the concatenated `run_criteria`).
    """
    rows = []
    for (criterion, n_train), group in per_run.groupby(["criterion", "n_train"], sort=True):
        a = group[group["regime"] == treatment]
        b = group[group["regime"] == control]
        met_a, met_b = int(a["met"].sum()), int(b["met"].sum())
        diff, lo, hi = stats.bootstrap_mean_diff(a["metric"], b["metric"], n_boot, stable_seed("stats", seed, criterion, n_train))
        fisher = stats.fisher(met_a, len(a), met_b, len(b))
        rows.append({
            "criterion": criterion, "n_train": int(n_train), "treatment": treatment, "control": control,
            "n_treatment": len(a), "met_treatment": met_a, "n_control": len(b), "met_control": met_b,
            **fisher, "mannwhitney_p": stats.mann_whitney(a["metric"], b["metric"]),
            "metric_diff": diff, "metric_diff_lo": lo, "metric_diff_hi": hi,
            "significant": bool(fisher["fisher_p_greater"] < alpha), "alpha": alpha,
            "power": stats.power_statement(len(a), len(b), alpha), "description": DESCRIPTIONS[criterion],
        })
    return pd.DataFrame(rows)


def summarise_runs(tables_by_run: Mapping[str, Mapping[str, pd.DataFrame]], run_info: pd.DataFrame,
                   criteria: Criteria) -> pd.DataFrame:
    """The per-run criteria of every run, tagged with its regime, n_train and seed from `run_info` (indexed by run)."""
    frames = [run_criteria(tables, criteria).assign(run=run) for run, tables in sorted(tables_by_run.items())]
    per_run = pd.concat(frames, ignore_index=True).join(run_info[["regime", "n_train", "seed"]], on="run")
    return per_run[["run", "regime", "n_train", "seed", "criterion", "metric", "met"]].sort_values(
        ["criterion", "regime", "n_train", "seed"], ignore_index=True).astype({"metric": np.float64})


def run_info(run_dirs) -> pd.DataFrame:
    """Regime, n_train and seed of each run directory, indexed by run name (from its manifest)."""
    rows = []
    for run_dir in run_dirs:
        spec = spec_from_dict(manifest(run_dir)["spec"])
        rows.append({"run": spec.name, "regime": spec.regime.name, "n_train": spec.setup.n_train, "seed": spec.seed})
    return pd.DataFrame(rows).set_index("run")
