"""A synthetic five-hospital Camelyon17 in the exact WILDS on-disk layout.

The real dataset is a 10 GB download that no build or test machine here can fetch, so the default
config and the tests read this fixture through the same `wilds` loader instead:

    {root}/camelyon17_v1.0/RELEASE_v1.0.txt
    {root}/camelyon17_v1.0/metadata.csv        index, patient, node, x_coord, y_coord, tumor, slide, center, split
    {root}/camelyon17_v1.0/patches/patient_{patient}_node_{node}/patch_patient_{patient}_node_{node}_x_{x}_y_{y}.png

Each patch is tissue rendered by Beer–Lambert mixing of two stains (eosin background, haematoxylin
nuclei). Two signals are planted:

- the task: a tumour patch has a dense cluster of large, dark nuclei in its central third (the
  real label is "tumour in the central 32×32 of 96×96"); `tumour_strength` sets how many;
- the shortcut: every hospital has its own stain colours (so hospital is always decodable), and
  the stain concentration is raised for tumour and lowered for normal patches with probability
  (1 + strength)/2 each, the reverse otherwise. The strength is `shortcut_strength` in
  `shortcut_hospitals` (the training hospitals) and `heldout_shortcut_strength` elsewhere: 0 makes
  the stain uninformative there, a negative value reverses it. A model that reads stain darkness
  instead of nuclei then scores well in distribution and fails out of distribution, as a
  hospital-shortcut model would; a weak tumour cue (`tumour_strength` < 1: few extra nuclei,
  Poisson-distributed, so some tumour patches show none) makes the shortcut the easier signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from interplab.io import atomic_path, stable_seed

N_HOSPITALS = 5
DATA_DIRNAME = "camelyon17_v1.0"
# Optical densities (RGB) of eosin and haematoxylin per hospital: the stain signature.
EOSIN_OD = np.array([[0.10, 0.55, 0.25], [0.05, 0.45, 0.10], [0.20, 0.60, 0.40], [0.08, 0.40, 0.30], [0.15, 0.50, 0.15]])
HAEMATOXYLIN_OD = np.array([[0.65, 0.75, 0.25], [0.55, 0.85, 0.35], [0.70, 0.65, 0.20], [0.60, 0.80, 0.15],
                            [0.75, 0.70, 0.30]])
STAIN_SHIFT = 0.35  # relative change of stain concentration carried by the shortcut
BACKGROUND_NUCLEI = 35  # mean nuclei per patch
TUMOUR_NUCLEI = 18  # mean extra nuclei in a tumour's central third at tumour_strength 1


@dataclass(frozen=True)
class FixtureConfig:
    n_per_hospital: int = 240
    image_size: int = 32
    shortcut_strength: float = 0.9
    heldout_shortcut_strength: float = 0.0
    tumour_strength: float = 1.0
    shortcut_hospitals: tuple[int, ...] = (0, 3, 4)
    id_val_fraction: float = 0.2
    slides_per_hospital: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 <= self.shortcut_strength <= 1.0:
            raise ValueError(f"fixture shortcut_strength must be in [0, 1], got {self.shortcut_strength}")
        if not -1.0 <= self.heldout_shortcut_strength <= 1.0:
            raise ValueError(f"fixture heldout_shortcut_strength must be in [-1, 1], got {self.heldout_shortcut_strength}")
        if self.image_size < 8:
            raise ValueError(f"fixture image_size must be at least 8 px, got {self.image_size}")


def _nuclei_density(rng: np.random.Generator, size: int, count: int, radius: float, lo: float, hi: float) -> np.ndarray:
    """Sum of `count` Gaussian blobs with centres uniform in [lo, hi)·size, as an [size, size] map."""
    if count == 0:
        return np.zeros((size, size))
    centres = rng.uniform(lo * size, hi * size, size=(count, 2))
    radii = radius * rng.uniform(0.7, 1.3, size=count)
    grid = np.arange(size) + 0.5
    # A Gaussian blob is separable, so the sum over blobs is one [size, count] @ [count, size] product.
    rows = np.exp(-((grid[None, :] - centres[:, :1]) ** 2) / (2 * radii[:, None] ** 2))
    cols = np.exp(-((grid[None, :] - centres[:, 1:]) ** 2) / (2 * radii[:, None] ** 2))
    return rows.T @ cols


def render_patch(rng: np.random.Generator, cfg: FixtureConfig, hospital: int, tumour: bool, stain_sign: float) -> np.ndarray:
    """One uint8 RGB patch [size, size, 3] for a hospital, a label and a stain-shift sign (±1)."""
    size = cfg.image_size
    radius = max(0.6, 2.2 * size / 96)  # a patch shows the same tissue at any resolution: radii scale, counts do not
    background = _nuclei_density(rng, size, rng.poisson(BACKGROUND_NUCLEI), radius, 0.0, 1.0)
    nuclei = np.clip(background, 0, 1.2)
    if tumour:
        n_tumour = rng.poisson(cfg.tumour_strength * TUMOUR_NUCLEI)
        nuclei = nuclei + 1.3 * _nuclei_density(rng, size, n_tumour, 1.4 * radius, 1 / 3, 2 / 3)
    tissue = 0.7 + 0.25 * rng.random((size, size))
    concentration = 1.0 + STAIN_SHIFT * stain_sign
    od = concentration * (tissue[..., None] * EOSIN_OD[hospital] + np.minimum(nuclei, 2.0)[..., None] * HAEMATOXYLIN_OD[hospital])
    rgb = np.exp(-od) + 0.03 * rng.standard_normal((size, size, 3))
    return (np.clip(rgb, 0, 1) * 255).round().astype(np.uint8)


def fixture_metadata(cfg: FixtureConfig) -> pd.DataFrame:
    """One row per patch in WILDS's metadata.csv columns, plus the stain-shift sign the renderer needs.

    Labels are balanced per hospital; patients are numbered per slide (zero-padded, as WILDS reads
    them as strings); `split` is 1 (in-distribution validation) for `id_val_fraction` of every
    hospital's patches, which WILDS overrides to val/test for hospitals 1 and 2.
    """
    rng = np.random.default_rng(stable_seed("grok-fixture-metadata", cfg.seed))
    rows = []
    for hospital in range(N_HOSPITALS):
        n = cfg.n_per_hospital
        tumour = rng.permutation(np.arange(n) % 2)
        id_val = rng.permutation(np.arange(n) < round(cfg.id_val_fraction * n))
        strength = cfg.shortcut_strength if hospital in cfg.shortcut_hospitals else cfg.heldout_shortcut_strength
        sign = np.where(rng.random(n) < (1 + strength) / 2, 2 * tumour - 1, 1 - 2 * tumour)
        for i in range(n):
            slide = hospital * cfg.slides_per_hospital + i % cfg.slides_per_hospital
            rows.append({"patient": f"{slide:03d}", "node": 0, "x_coord": 96 * (i // cfg.slides_per_hospital),
                         "y_coord": 96 * hospital, "tumor": int(tumour[i]), "slide": slide, "center": hospital,
                         "split": int(id_val[i]), "stain_sign": int(sign[i])})
    return pd.DataFrame(rows)


def patch_path(row) -> str:
    """The patch file WILDS expects for a metadata row, relative to camelyon17_v1.0/."""
    stem = f"patient_{row.patient}_node_{row.node}"
    return f"patches/{stem}/patch_{stem}_x_{row.x_coord}_y_{row.y_coord}.png"


def write_fixture(root: str | Path, cfg: FixtureConfig) -> pd.DataFrame:
    """Render every patch and write the WILDS layout under `root`; returns the metadata written.

    The release file is written last, so a half-written fixture never looks complete to WILDS.
    """
    data_dir = Path(root) / DATA_DIRNAME
    meta = fixture_metadata(cfg)
    for row in meta.itertuples():
        rng = np.random.default_rng(stable_seed("grok-fixture-patch", cfg.seed, row.Index))
        image = render_patch(rng, cfg, row.center, bool(row.tumor), row.stain_sign)
        path = data_dir / patch_path(row)
        with atomic_path(path) as tmp:
            Image.fromarray(image).save(tmp, format="PNG")
    table = meta.drop(columns="stain_sign")
    with atomic_path(data_dir / "metadata.csv") as tmp:
        table.to_csv(tmp)  # the unnamed first column is the index, as in the real file
    with atomic_path(data_dir / "RELEASE_v1.0.txt") as tmp:
        tmp.write_text(f"interplab synthetic Camelyon17 fixture: {cfg}\n")
    return meta
