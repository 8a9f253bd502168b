"""Per-image features of every ResNet block at a checkpoint, for probes and interventions.

The images are the run's own splits (rebuilt from its manifest: same root, hospitals, subsample
seed), so a later stage needs only a run directory, an epoch and a split name.
"""

from __future__ import annotations

from pathlib import Path

import torch

from interplab.grok.checkpoints import load_model, manifest
from interplab.grok.data import ImageSet, load_splits
from interplab.grok.models import resnet_block_features
from interplab.grok.runs import CAMELYON, spec_from_dict
from interplab.grok.tasks import EVAL_BATCH, images_to_input


def run_splits(run_dir: str | Path) -> dict[str, ImageSet]:
    """The train / id / ood image sets a Camelyon17 run was trained and scored on."""
    spec = spec_from_dict(manifest(run_dir)["spec"])
    if spec.task != CAMELYON:
        raise ValueError(f"{run_dir} is a {spec.task} run; block features exist for Camelyon17 runs only")
    return load_splits(spec.setup.data, spec.setup.n_train, spec.seed)


def block_features(run_dir: str | Path, epoch: int, images: ImageSet, device: str = "cpu") -> dict[str, torch.Tensor]:
    """{layer1..layer4: [N, C]} spatially averaged block outputs of the checkpoint at `epoch` (layer4 = the 512-d
    vector the fc head reads), on CPU."""
    model = load_model(run_dir, epoch, device)
    parts: dict[str, list[torch.Tensor]] = {}
    for start in range(0, len(images), EVAL_BATCH):
        x = images_to_input(images.images[start:start + EVAL_BATCH], device)
        for block, value in resnet_block_features(model, x).items():
            parts.setdefault(block, []).append(value.cpu())
    return {block: torch.cat(values) for block, values in parts.items()}
