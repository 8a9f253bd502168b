"""The one colour-scale policy of every layer × metric view (heatmaps, their strips and landscapes).

Why a policy: a trial has a handful of layers, and min–max scaling per column paints d*_S = 374.0
and 376.7 as the two ends of the palette, FVU 0.059 and 0.067 as "lowest" and "highest", three
cells printed 2.72 in three shades and a constant column as "low". The metrics have different
units, so each column still gets its own scale, but:

- the scale reads the values as printed, so equal printed numbers always get equal shades;
- the window a column maps onto the palette is its range or `MIN_RELATIVE_SPAN` of its largest
  magnitude, whichever is wider, centred on the range: a spread of a few percent takes a few
  shades around the middle of the palette, not all of it;
- a column whose printed values are all equal has nothing to rank and is drawn in `NEUTRAL` grey.

`NOTE` says this in words; every figure that uses the policy prints it.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import Colormap

MIN_RELATIVE_SPAN = 0.2  # the palette's full width stands for at least a 20% difference
NEUTRAL = "0.88"
NOTE = ("Shade: each column on its own scale, from its lowest to its highest printed value; a column spread by "
        f"less than {MIN_RELATIVE_SPAN:.0%} of its largest value uses only that share of the palette. "
        "Equal numbers, equal shades; grey: the column is constant.")


def printed(values, fmt: str) -> np.ndarray:
    """The values as the figure prints them (fmt is a str.format pattern such as "{:.3f}")."""
    return np.array([float(fmt.format(v)) for v in np.asarray(values, dtype=float)])


def constant(values, fmt: str) -> bool:
    """Whether a column prints one number only (nothing to rank: it is drawn neutral)."""
    shown = printed(values, fmt)
    return bool(shown.min() == shown.max())


def window(values, fmt: str) -> tuple[float, float]:
    """The value range one column maps onto the palette's ends (or onto an axis's height): its printed
    range, widened symmetrically to at least MIN_RELATIVE_SPAN of its largest magnitude (1 if all zero)."""
    shown = printed(values, fmt)
    lo, hi = float(shown.min()), float(shown.max())
    span = max(hi - lo, MIN_RELATIVE_SPAN * max(abs(lo), abs(hi))) or 1.0
    mid = (lo + hi) / 2
    return mid - span / 2, mid + span / 2


def levels(values, fmt: str) -> np.ndarray:
    """Each value's position in [0, 1] within its column's window; NaN (drawn neutral) for a constant column."""
    shown = printed(values, fmt)
    if constant(values, fmt):
        return np.full(shown.shape, np.nan)
    lo, hi = window(values, fmt)
    return (shown - lo) / (hi - lo)


def matrix_levels(matrix: pd.DataFrame, formats: list[str]) -> np.ndarray:
    """`levels` of every column of a layer × metric table, column c printed with formats[c]."""
    return np.column_stack([levels(matrix.iloc[:, c], fmt) for c, fmt in enumerate(formats)])


def palette(name: str) -> Colormap:
    """The named colour map with NaN (a constant column) drawn in the neutral grey."""
    return plt.get_cmap(name).with_extremes(bad=NEUTRAL)


def ink(cmap: Colormap, level: float, dark: str = "k", light: str = "w") -> str:
    """A text colour that reads on the cell's shade (dark on light cells and on the neutral grey)."""
    if np.isnan(level):
        return dark
    return dark if np.dot(cmap(level)[:3], [0.299, 0.587, 0.114]) > 0.5 else light
