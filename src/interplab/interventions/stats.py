"""Statistics across runs: exact tests, bootstrap intervals, and what sample size significance needs.

With 5 grokking-favourable vs 3 standard runs only a perfect split can reach p < 0.05; every table
carries a plain-language line saying so, computed from the actual counts.
"""

from __future__ import annotations

from math import comb
from typing import Sequence

import numpy as np
from scipy import stats


def fisher(success_a: int, n_a: int, success_b: int, n_b: int) -> dict:
    """Fisher's exact test on [[success_a, fail_a], [success_b, fail_b]]: two-sided and one-sided (a > b)."""
    table = [[success_a, n_a - success_a], [success_b, n_b - success_b]]
    return {"fisher_p_two_sided": float(stats.fisher_exact(table).pvalue),
            "fisher_p_greater": float(stats.fisher_exact(table, alternative="greater").pvalue)}


def mann_whitney(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided exact Mann-Whitney U p-value (NaN when either group is empty)."""
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    return float(stats.mannwhitneyu(a, b, alternative="two-sided", method="exact").pvalue)


def bootstrap_mean_diff(a: Sequence[float], b: Sequence[float], n_boot: int = 5000, seed: int = 0) -> tuple[float, float, float]:
    """Mean(a) − mean(b) with a 95% percentile bootstrap interval (resampling runs within each group)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.size == 0 or b.size == 0:
        return (float("nan"),) * 3
    rng = np.random.default_rng(seed)
    diffs = rng.choice(a, (n_boot, a.size)).mean(1) - rng.choice(b, (n_boot, b.size)).mean(1)
    return float(a.mean() - b.mean()), float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))


def min_fisher_p(n_a: int, n_b: int) -> float:
    """The smallest one-sided Fisher p any outcome can give: a perfect split, 1 / C(n_a + n_b, n_a)."""
    return 1.0 / comb(n_a + n_b, n_a)


def runs_needed(alpha: float = 0.05) -> int:
    """Fewest runs per arm (equal arms) for which a perfect split reaches one-sided Fisher p < alpha."""
    n = 1
    while min_fisher_p(n, n) >= alpha:
        n += 1
    return n


def power_statement(n_a: int, n_b: int, alpha: float = 0.05) -> str:
    best = min_fisher_p(n_a, n_b)
    verdict = ("so no count can be significant" if best >= alpha
               else f"so only a split at least that extreme can reach p < {alpha:g}")
    return (f"With {n_a} vs {n_b} runs the smallest possible one-sided Fisher p is {best:.3f} "
            f"(a perfect {n_a}/{n_a} vs 0/{n_b} split), {verdict}; a perfect split needs at least "
            f"{runs_needed(alpha)} runs per arm to reach p < {alpha:g}, and detecting a realistic, imperfect "
            f"difference needs more (8–10 per arm).")
