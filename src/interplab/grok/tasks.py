"""The two training tasks as batch sources: Camelyon17 patches and modular-addition pairs.

A task yields ready-to-use (inputs, labels) batches on the run's device: shuffled training
batches for an epoch (the order is a function of the run seed and the epoch alone, so a resumed
run sees exactly the batches an uninterrupted one would), and evaluation batches per split.
"""

from __future__ import annotations

from typing import Iterator, Protocol

import numpy as np
import torch

from interplab.grok.data import ImageSet, load_splits
from interplab.grok.runs import CAMELYON, CamelyonSetup, ModularSetup, RunSpec
from interplab.io import stable_seed

Batch = tuple[torch.Tensor, torch.Tensor]
EVAL_BATCH = 512


class Task(Protocol):
    splits: tuple[str, ...]

    def train_batches(self, epoch: int) -> Iterator[Batch]: ...

    def eval_batches(self, split: str) -> Iterator[Batch]: ...


def images_to_input(images: torch.Tensor, device: str) -> torch.Tensor:
    """uint8 [N, 3, H, W] → float in [−1, 1] on the device (BatchNorm takes care of the rest)."""
    return images.to(device, non_blocking=True).float().div_(127.5).sub_(1.0)


class CamelyonTask:
    splits = ("train", "id", "ood")

    def __init__(self, setup: CamelyonSetup, seed: int, device: str, sets: dict[str, ImageSet] | None = None):
        self.setup, self.seed, self.device = setup, seed, device
        self.sets = sets if sets is not None else load_splits(setup.data, setup.n_train, seed)

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        train = self.sets["train"]
        order = torch.randperm(len(train), generator=torch.Generator().manual_seed(stable_seed("grok-order", self.seed, epoch)))
        for start in range(0, len(order), self.setup.batch_size):
            idx = order[start:start + self.setup.batch_size]
            yield images_to_input(train.images[idx], self.device), train.labels[idx].to(self.device)

    def eval_batches(self, split: str) -> Iterator[Batch]:
        data = self.sets[split]
        for start in range(0, len(data), EVAL_BATCH):
            yield (images_to_input(data.images[start:start + EVAL_BATCH], self.device),
                   data.labels[start:start + EVAL_BATCH].to(self.device))


def modular_pairs(setup: ModularSetup, seed: int) -> dict[str, Batch]:
    """All p² sequences (a, b, =) with labels (a+b) mod p, split into train_fraction / rest by the seed."""
    p = setup.p
    a, b = np.divmod(np.arange(p * p), p)
    tokens = torch.from_numpy(np.stack([a, b, np.full(p * p, p)], 1))
    labels = torch.from_numpy((a + b) % p)
    perm = np.random.default_rng(stable_seed("grok-modular-split", seed)).permutation(p * p)
    n_train = int(round(setup.train_fraction * p * p))
    train, test = np.sort(perm[:n_train]), np.sort(perm[n_train:])
    return {"train": (tokens[train], labels[train]), "test": (tokens[test], labels[test])}


class ModularTask:
    """Full-batch training: one epoch is one optimizer step on every training pair."""

    splits = ("train", "test")

    def __init__(self, setup: ModularSetup, seed: int, device: str):
        self.pairs = {k: (x.to(device), y.to(device)) for k, (x, y) in modular_pairs(setup, seed).items()}

    def train_batches(self, epoch: int) -> Iterator[Batch]:
        yield self.pairs["train"]

    def eval_batches(self, split: str) -> Iterator[Batch]:
        yield self.pairs[split]


def make_task(spec: RunSpec, device: str) -> Task:
    if spec.task == CAMELYON:
        return CamelyonTask(spec.setup, spec.seed, device)
    return ModularTask(spec.setup, spec.seed, device)
