"""Shared look for every figure, the shared axis policies, and the one place figures are written
(atomically, raster and vector, with provenance)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

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


def vector_path(path: str | Path) -> Path:
    """The vector copy of a figure: same folder and stem as the PNG, for print and for LaTeX."""
    return Path(path).with_suffix(".pdf")


def save(fig: plt.Figure, path: str | Path, provenance: Mapping[str, Any] | None = None) -> None:
    """Write the PNG and its PDF twin, each atomically; the provenance JSON goes into both files'
    metadata (PNG text chunk `Description`, PDF `Subject`). Both are drawn before either is renamed
    into place, the PDF first, so the PNG (the rules' main output) never exists without its PDF.
    The PDF carries no creation date, so the same figure gives the same bytes."""
    described = json.dumps(provenance, sort_keys=True, default=str) if provenance else None
    png = {"Software": "interplab", **({"Description": described} if described else {})}
    pdf = {"Creator": "interplab", "CreationDate": None, **({"Subject": described} if described else {})}
    try:
        with atomic_path(path) as tmp_png, atomic_path(vector_path(path)) as tmp_pdf:
            fig.savefig(tmp_pdf, format="pdf", bbox_inches="tight", metadata=pdf)
            fig.savefig(tmp_png, format="png", bbox_inches="tight", metadata=png)
    finally:
        plt.close(fig)


def count_label(value: float, _=None) -> str:
    """A count (tokens, steps) as people say it: 0, 500, 100k, 1.5M, 2B."""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def count_axis(ax, axis: str = "x", log: bool = False) -> None:
    """Label a count axis (tokens, steps) 100k / 1M instead of 300000, 3×10⁵ or 10⁵ (log: one tick per decade)."""
    if log:
        getattr(ax, f"set_{axis}scale")("log")
        getattr(ax, f"{axis}axis").set_minor_formatter(NullFormatter())
    getattr(ax, f"{axis}axis").set_major_formatter(FuncFormatter(count_label))


def plain_log_axis(ax, axis: str = "x") -> None:
    """Log scale labelled with plain numbers at 1-2-5 steps (1, 2, 5, 10, 0.02, …), never 10^k or
    4.5×10²: the reader compares ratios without decoding exponents."""
    getattr(ax, f"set_{axis}scale")("log")
    scale = getattr(ax, f"{axis}axis")
    scale.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    scale.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    scale.set_minor_formatter(NullFormatter())


LOG_MIN_DECADES = 1.0  # a log axis only pays off once the values span at least a factor of 10


def spans_decades(values) -> bool:
    """Whether positive values span at least LOG_MIN_DECADES decades (else a log axis only squeezes them)."""
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]
    return bool(finite.size) and bool((finite > 0).all()) and np.log10(finite.max() / finite.min()) >= LOG_MIN_DECADES


def value_axis(ax, values, axis: str = "y") -> None:
    """Log with plain ticks where the values span a decade or more, else the default linear axis."""
    if spans_decades(values):
        plain_log_axis(ax, axis)


def sequential_colors(n: int, cmap: str = SEQUENTIAL, lo: float = 0.05, hi: float = 0.85) -> list:
    """n colours along a perceptually uniform map, stopping short of the too-light end."""
    cm = plt.get_cmap(cmap)
    return [cm(lo + (hi - lo) * i / max(n - 1, 1)) for i in range(n)]
