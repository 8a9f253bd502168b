"""Shared look for every figure, and the one place figures are written (atomically, with provenance)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from interplab.io import atomic_path  # noqa: E402

RC = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.25,
    "legend.frameon": False,
    "legend.fontsize": 8,
}
SEQUENTIAL = "viridis"
DIVERGING = "RdBu_r"


def apply() -> None:
    plt.rcParams.update(RC)


def save(fig: plt.Figure, path: str | Path, provenance: Mapping[str, Any] | None = None) -> None:
    """Write a PNG atomically; the provenance JSON goes into the PNG's text metadata."""
    metadata = {"Software": "interplab"}
    if provenance:
        metadata["Description"] = json.dumps(provenance, sort_keys=True, default=str)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", metadata=metadata)
    plt.close(fig)


def sequential_colors(n: int, cmap: str = SEQUENTIAL, lo: float = 0.05, hi: float = 0.85) -> list:
    """n colours along a perceptually uniform map, stopping short of the too-light end."""
    cm = plt.get_cmap(cmap)
    return [cm(lo + (hi - lo) * i / max(n - 1, 1)) for i in range(n)]
