"""Neuron (channel) ablation: rank channels by selectivity, mean-ablate the top K, compare to controls.

Selectivity is the one-way ANOVA F statistic of a channel's activation across groups (hospitals,
or tumour vs normal), which unlike probe weights does not depend on regularisation or scaling.
Ablation replaces a channel by its training mean (zeroing a post-ReLU channel would shift the
input distribution the head sees).
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from sklearn.feature_selection import f_classif


def selectivity(features: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """ANOVA F per channel (0 for channels that never vary, e.g. ReLU channels that are always off)."""
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Features .* are constant")
        scores, _ = f_classif(features, groups)
    return np.nan_to_num(scores, nan=0.0, posinf=np.finfo(float).max)


def top_channels(scores: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-scores, kind="stable")[:k]


def random_channels(n_channels: int, k: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).choice(n_channels, size=min(k, n_channels), replace=False)


def mean_ablate(features: np.ndarray, channels: Sequence[int], means: np.ndarray) -> np.ndarray:
    out = features.copy()
    out[:, channels] = means[channels]
    return out
