"""Removing the hospital subspace: probe row space, INLP, LEACE, and a random subspace control.

Each method returns an `Eraser` (a function features → erased features) fitted on training images
only, so it can be applied unchanged to the OOD hospital.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from interplab.interventions.probes import chance_accuracy, fit_probe, heldout_accuracy, raw_space_directions

Eraser = Callable[[np.ndarray], np.ndarray]


def rowspace_projection(weights: np.ndarray) -> np.ndarray:
    """P = Wᵀ(WWᵀ)⁺W: the orthogonal projection onto the span of W's rows ([d, d]). W is first scaled
    to a largest entry of 1: the span does not depend on the scale, and tiny weights (a probe under
    strong regularisation) would otherwise underflow in WWᵀ."""
    w = np.atleast_2d(np.asarray(weights, dtype=float))
    scale = np.abs(w).max() if w.size else 0.0
    w = w / scale if scale > 0 else w
    return w.T @ np.linalg.pinv(w @ w.T) @ w


def projection_eraser(projection: np.ndarray, center: np.ndarray) -> Eraser:
    """h → h − P(h − μ): remove the subspace around the training mean (the mean itself is kept)."""
    keep = np.eye(len(projection)) - projection
    return lambda h: (h - center) @ keep.T + center


def probe_rowspace(features: np.ndarray, labels: np.ndarray, seed: int = 0) -> tuple[Eraser, int]:
    """One projection off the hospital probe's row space (the reference study's M4); returns (eraser, rank)."""
    projection = rowspace_projection(raw_space_directions(fit_probe(features, labels, seed)))
    return projection_eraser(projection, features.mean(0)), int(round(np.trace(projection)))


def inlp(features: np.ndarray, labels: np.ndarray, rounds: int = 5, seed: int = 0,
         stop_margin: float = 0.02) -> tuple[Eraser, int]:
    """Iterative nullspace projection (Ravfogel et al. 2020): refit a probe on the erased features and
    remove its row space too, for at most `rounds` rounds, stopping once a held-out probe is within
    `stop_margin` of chance (further rounds would only remove noise directions, and the task with them).

    Returns the projection off the span of every kept round's directions, and that span's rank.
    """
    center = features.mean(0)
    chance = chance_accuracy(labels)
    directions = np.zeros((0, features.shape[1]))
    erased = features
    for _ in range(rounds):
        if heldout_accuracy(erased, labels, seed=seed) <= chance + stop_margin:
            break
        directions = np.vstack([directions, raw_space_directions(fit_probe(erased, labels, seed))])
        erased = projection_eraser(rowspace_projection(directions), center)(features)
    projection = rowspace_projection(directions) if len(directions) else np.zeros((features.shape[1],) * 2)
    return projection_eraser(projection, center), int(round(np.trace(projection)))


def leace(features: np.ndarray, labels: np.ndarray) -> tuple[Eraser, int]:
    """LEACE (Belrose et al. 2023, `concept-erasure`): the least-squares edit after which no linear
    classifier beats a constant. Its rank is the number of classes minus one at most."""
    from concept_erasure import LeaceEraser

    classes = np.unique(labels)
    onehot = torch.from_numpy((labels[:, None] == classes[None, :]).astype(np.float64))
    eraser = LeaceEraser.fit(torch.from_numpy(features.astype(np.float64)), onehot)
    rank = int(torch.linalg.matrix_rank(eraser.proj_left @ eraser.proj_right))

    def erase(h: np.ndarray) -> np.ndarray:
        return eraser(torch.from_numpy(h.astype(np.float64))).numpy()

    return erase, rank


def random_subspace(features: np.ndarray, rank: int, seed: int = 0) -> Eraser:
    """Control: project off a uniformly random subspace of the same rank as the method it controls."""
    rng = np.random.default_rng(seed)
    basis, _ = np.linalg.qr(rng.standard_normal((features.shape[1], max(rank, 0))))
    return projection_eraser(basis @ basis.T, features.mean(0))
