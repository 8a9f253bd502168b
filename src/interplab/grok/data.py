"""Camelyon17 through the real `wilds` loader: hospital splits, seeded subsampling, images in memory.

The same code reads the real download and the synthetic fixture (fixture.py); only `root_dir`
differs. Splits are chosen by hospital, not by WILDS's fixed val/test centres, so the config
decides which hospitals train and which one is out of distribution:

- train pool: patches of `train_hospitals` outside WILDS's in-distribution validation split;
  each run draws `n_train` of them with its own seed;
- id: the in-distribution validation patches of the training hospitals (WILDS `split` = 1);
- ood: every patch of `ood_hospital`.

Evaluation sets are capped at `max_eval` patches by a seed that does not depend on the run, so
every run is scored on the same images. Decoded images stay in memory as uint8 [N, 3, H, W]: at
300–1000 training patches that is at most tens of MB, and it makes an epoch pure tensor work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from interplab.grok.fixture import DATA_DIRNAME
from interplab.io import stable_seed

ID_VAL_SPLIT = 1  # WILDS metadata.csv `split` value of the in-distribution validation patches
DOWNLOAD_HINT = (
    "Get Camelyon17-WILDS (about 10 GB) with `python -c \"from wilds import get_dataset; "
    "get_dataset('camelyon17', root_dir='{root}', download=True)\"` on a machine with network, or point "
    "grok.data.root_dir at an existing copy: the folder that contains camelyon17_v1.0/. "
    "Set grok.data.source: fixture to use the synthetic stand-in instead."
)


class DatasetMissingError(FileNotFoundError):
    """The Camelyon17 root is absent or incomplete; the message names the path and how to get the data."""


@dataclass(frozen=True)
class SplitConfig:
    root_dir: str
    train_hospitals: tuple[int, ...] = (0, 3, 4)
    ood_hospital: int = 2
    max_eval: int = 2000

    def __post_init__(self) -> None:
        if self.ood_hospital in self.train_hospitals:
            others = [h for h in range(5) if h not in self.train_hospitals]
            raise ValueError(f"grok.data.ood_hospital {self.ood_hospital} is also in grok.data.train_hospitals "
                             f"{list(self.train_hospitals)}. Allowed: a hospital the model never trains on, one of {others}")


@dataclass(frozen=True)
class ImageSet:
    """Patches of one split: images uint8 [N, 3, H, W], labels, hospital and slide ids, WILDS indices."""

    images: torch.Tensor
    labels: torch.Tensor
    hospitals: torch.Tensor
    slides: torch.Tensor
    indices: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def check_root(root_dir: str | Path) -> Path:
    """The camelyon17_v1.0 folder under `root_dir`, or DatasetMissingError saying what is missing."""
    data_dir = Path(root_dir) / DATA_DIRNAME
    required = [data_dir / "RELEASE_v1.0.txt", data_dir / "metadata.csv", data_dir / "patches"]
    missing = [str(p) for p in required if not p.exists()]
    if missing:
        what = "does not exist" if not data_dir.exists() else f"is incomplete (missing {', '.join(missing)})"
        raise DatasetMissingError(f"Camelyon17 not found: {data_dir} {what}. " + DOWNLOAD_HINT.format(root=root_dir))
    return data_dir


def load_camelyon17(root_dir: str | Path):
    """The WILDS Camelyon17Dataset at `root_dir`, never downloading."""
    check_root(root_dir)
    from wilds import get_dataset

    return get_dataset("camelyon17", root_dir=str(root_dir), download=False)


def _decode(dataset, indices: np.ndarray) -> ImageSet:
    data_dir = Path(dataset.data_dir)
    missing = [dataset._input_array[i] for i in indices[:50] if not (data_dir / dataset._input_array[i]).exists()]
    if missing:
        raise DatasetMissingError(f"Camelyon17 at {data_dir} is incomplete: {len(missing)} of the first "
                                  f"{min(50, len(indices))} selected patches are missing, e.g. {data_dir / missing[0]}. "
                                  + DOWNLOAD_HINT.format(root=data_dir.parent))
    images = np.stack([np.asarray(dataset.get_input(int(i)), dtype=np.uint8) for i in indices])
    meta = dataset.metadata_array[torch.as_tensor(indices, dtype=torch.long)]
    fields = dataset.metadata_fields
    return ImageSet(
        images=torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(),
        labels=dataset.y_array[torch.as_tensor(indices, dtype=torch.long)].clone(),
        hospitals=meta[:, fields.index("hospital")].clone(),
        slides=meta[:, fields.index("slide")].clone(),
        indices=indices,
    )


def _capped(indices: np.ndarray, cap: int, *seed_parts) -> np.ndarray:
    if len(indices) <= cap:
        return indices
    rng = np.random.default_rng(stable_seed(*seed_parts))
    return np.sort(rng.choice(indices, size=cap, replace=False))


def split_indices(dataset, cfg: SplitConfig, n_train: int, seed: int) -> dict[str, np.ndarray]:
    """WILDS row indices of the train subsample, the ID evaluation set and the OOD evaluation set."""
    meta = dataset.metadata_array
    hospital = meta[:, dataset.metadata_fields.index("hospital")].numpy()
    id_val = dataset.split_array == dataset.split_dict["id_val"]
    in_train_hospitals = np.isin(hospital, cfg.train_hospitals)
    pool = np.flatnonzero(in_train_hospitals & ~id_val)
    id_rows = np.flatnonzero(in_train_hospitals & id_val)
    ood_rows = np.flatnonzero(hospital == cfg.ood_hospital)
    present = sorted(set(hospital.tolist()))
    for name, rows in (("training pool", pool), ("in-distribution validation", id_rows), ("OOD hospital", ood_rows)):
        if len(rows) == 0:
            raise ValueError(f"Camelyon17 at {dataset.data_dir}: the {name} is empty for train_hospitals "
                             f"{list(cfg.train_hospitals)} and ood_hospital {cfg.ood_hospital} (hospitals present: "
                             f"{present}); check grok.data")
    if n_train > len(pool):
        raise ValueError(f"n_train {n_train} exceeds the {len(pool)} training patches of hospitals "
                         f"{list(cfg.train_hospitals)} at {dataset.data_dir}; lower n_train or enlarge the fixture "
                         "(grok.fixture.n_per_hospital)")
    rng = np.random.default_rng(stable_seed("grok-train-subset", seed, n_train))
    return {
        "train": np.sort(rng.choice(pool, size=n_train, replace=False)),
        "id": _capped(id_rows, cfg.max_eval, "grok-id-eval"),
        "ood": _capped(ood_rows, cfg.max_eval, "grok-ood-eval"),
    }


def load_splits(cfg: SplitConfig, n_train: int, seed: int) -> dict[str, ImageSet]:
    """Decoded train / id / ood sets for one run (the train subsample depends on the run's seed)."""
    dataset = load_camelyon17(cfg.root_dir)
    return {name: _decode(dataset, rows) for name, rows in split_indices(dataset, cfg, n_train, seed).items()}
