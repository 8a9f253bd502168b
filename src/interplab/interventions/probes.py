"""Linear probes: standardised logistic regression, scored on held-out images."""

from __future__ import annotations

import math

import numpy as np
from scipy.stats import binom
from sklearn.feature_selection import VarianceThreshold
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler


# Features are float32 network activations: a channel whose spread is below this fraction of the
# widest channel's is constant up to rounding. An eraser leaves rounding residue (~1e-20) in dead
# channels that still correlates with the erased concept; standardising would blow it up to unit
# scale and hand the probe back what was erased, so such channels are dropped before scaling.
CONSTANT_RTOL = 1e-6


def fit_probe(features: np.ndarray, labels: np.ndarray, seed: int = 0, c: float = 1.0) -> Pipeline:
    """Drop numerically constant channels → StandardScaler → multinomial logistic regression (L2, strength 1/c)."""
    widest = float(np.std(features, axis=0).max())
    selector = VarianceThreshold((CONSTANT_RTOL * widest) ** 2) if widest > 0 else "passthrough"  # all constant: keep
    probe = Pipeline([("variancethreshold", selector), ("standardscaler", StandardScaler()),
                      ("logisticregression", LogisticRegression(C=c, max_iter=2000, random_state=seed))])
    return probe.fit(features, labels)


def split(features: np.ndarray, labels: np.ndarray, test_fraction: float, seed: int):
    """A seeded stratified train/test split (plain split when a class is too rare to stratify)."""
    counts = np.unique(labels, return_counts=True)[1]
    stratify = labels if counts.min() >= 2 else None
    return train_test_split(features, labels, test_size=test_fraction, random_state=seed, stratify=stratify)


def fitted_accuracy(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                    seed: int = 0) -> float:
    """Accuracy on (x_test, y_test) of a probe fitted on (x_train, y_train); NaN when training has one class."""
    if len(np.unique(y_train)) < 2:
        return float("nan")
    return float(fit_probe(x_train, y_train, seed).score(x_test, y_test))


def heldout_accuracy(features: np.ndarray, labels: np.ndarray, test_fraction: float = 0.3, seed: int = 0) -> float:
    """Fit a probe on part of the images and score it on the rest."""
    x_tr, x_te, y_tr, y_te = split(features, labels, test_fraction, seed)
    return fitted_accuracy(x_tr, y_tr, x_te, y_te, seed)


def chance_accuracy(labels: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent class."""
    return float(np.unique(labels, return_counts=True)[1].max() / len(labels))


def chance_interval(labels: np.ndarray, test_fraction: float, level: float = 0.95) -> tuple[float, float]:
    """The held-out accuracies a probe with no information reaches `level` of the time (binomial around chance
    over the test split's images): after erasure a probe should land inside it, and below it only when the
    eraser was fitted on the probe's test images."""
    n_test = math.ceil(test_fraction * len(labels))
    lo, hi = binom.interval(level, n_test, chance_accuracy(labels))
    return float(lo / n_test), float(hi / n_test)


def raw_space_directions(probe: Pipeline) -> np.ndarray:
    """The probe's weight rows mapped back to the unscaled feature space ([k, d]).

    The probe sees (h − μ)/σ on its kept channels, so w·(h − μ)/σ = (w/σ)·h + const: the direction in
    feature space is w/σ there and 0 on the dropped constant channels.
    """
    selector = probe.named_steps["variancethreshold"]
    scaler, logistic = probe.named_steps["standardscaler"], probe.named_steps["logisticregression"]
    kept = selector.get_support() if selector != "passthrough" else np.ones(scaler.n_features_in_, dtype=bool)
    directions = np.zeros((logistic.coef_.shape[0], kept.size))
    directions[:, kept] = logistic.coef_ / scaler.scale_
    return directions
