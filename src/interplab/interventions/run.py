"""Everything for one Camelyon17 grokking run: its features, then the four interventions as tables.

`run_interventions(run_dir, config)` returns the four tables the `interventions_run` rule writes:

- probes:   hospital and tumour probe held-out accuracy at every checkpoint × ResNet block;
- ablation: the hospital subspace erased by probe row space, INLP and LEACE, each beside random
            subspaces of the same rank, scored by the retrained hospital and tumour probes and by the
            trained head's OOD accuracy;
- steering: the head's OOD dose-response along the top between-hospital discriminant and along
            random directions, with monotonicity and the bootstrap slope of |ΔP(tumour)|;
- neurons:  top-K hospital-selective channels ablated, beside random-K and tumour-selective K.

Every eraser, direction and selectivity is fitted on the run's own training images (training
hospitals only) and applied unchanged to the OOD hospital, where the head is scored. The training
images are split once into a probe-training and a probe-test part (`probe_test_fraction`). Erasers
and channel selectivities are fitted on the probe-training part, the probes after an edit are
retrained on the edited probe-training part and scored on the edited probe-test part: the LEACE
protocol, under which a perfect eraser leaves the probe at chance. (Fitting the eraser on images
the probe is then split from pushes the probe below chance: the eraser equalised exactly those
images' class means, so the probe's train and test parts lean opposite ways.) The
interventions act on layer4 (the 512-d vector the fc head reads) of one checkpoint: the one with
the best OOD accuracy by default (`checkpoint: peak_ood`), where a shortcut should matter most.
The table builders take a `LayerData`, so they run on planted features as well as on a real run.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import dataclasses

import numpy as np
import pandas as pd
import torch

from interplab.grok.checkpoints import HISTORY, checkpoint_epochs, load_model
from interplab.grok.features import block_features, run_splits
from interplab.interventions import erasure, neurons, probes, steering
from interplab.interventions.config import FINAL, PEAK_OOD, InterventionConfig
from interplab.io import read_table, stable_seed
from interplab.progress import Progress

HEAD_LAYER = "layer4"
Head = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class LayerData:
    """Features of one layer: training images (hospital and tumour labels) and OOD images with the head."""

    train: np.ndarray
    hospital: np.ndarray
    tumour: np.ndarray
    ood: np.ndarray
    ood_tumour: np.ndarray
    head: Head

    def split(self, test_fraction: float, seed: int) -> tuple["LayerData", "LayerData"]:
        """Probe-training and probe-test parts of the training images (disjoint, stratified by hospital),
        each with the OOD images and the head."""
        fit, rest, _, _ = probes.split(np.arange(len(self.hospital)), self.hospital, test_fraction, seed)

        def part(rows: np.ndarray) -> "LayerData":
            return dataclasses.replace(self, train=self.train[rows], hospital=self.hospital[rows], tumour=self.tumour[rows])

        return part(fit), part(rest)


def choose_epoch(run_dir: str | Path, choice: str | int) -> int:
    """The checkpoint the interventions use: best OOD accuracy among checkpointed epochs, the last, or a given one."""
    epochs = checkpoint_epochs(run_dir)
    if choice == FINAL:
        return epochs[-1]
    if choice == PEAK_OOD:
        history = read_table(Path(run_dir) / HISTORY)
        at_checkpoints = history[history["epoch"].isin(epochs)].sort_values("epoch")
        return int(at_checkpoints["epoch"].iloc[int(np.argmax(at_checkpoints["ood_acc"].to_numpy()))])
    if int(choice) not in epochs:
        raise ValueError(f"interventions.checkpoint {choice} is not a checkpoint of {run_dir}; available epochs: "
                         f"{epochs} (or use peak_ood / final)")
    return int(choice)


def fc_head(model: torch.nn.Module) -> Head:
    """P(tumour) = softmax(fc(h))[:, 1] of a two-class head, as a numpy function of layer4 features."""
    weight = model.fc.weight.detach().double().cpu().numpy()
    bias = model.fc.bias.detach().double().cpu().numpy()
    w, b = weight[1] - weight[0], bias[1] - bias[0]
    return lambda h: 1.0 / (1.0 + np.exp(-(np.asarray(h, dtype=float) @ w + b)))


def head_accuracy(head: Head, features: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((head(features) > 0.5) == labels))


def _numpy(features: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    return {layer: value.double().numpy() for layer, value in features.items()}


def probe_table(features_by_epoch: dict[int, dict[str, np.ndarray]], hospital: np.ndarray, tumour: np.ndarray,
                cfg: InterventionConfig) -> pd.DataFrame:
    """Held-out accuracy of a fresh hospital and tumour probe per (checkpoint, layer), with chance."""
    rows = []
    for epoch, layers in sorted(features_by_epoch.items()):
        for layer, x in layers.items():
            for target, labels in (("hospital", hospital), ("tumour", tumour)):
                rows.append({"epoch": epoch, "layer": layer, "target": target,
                             "accuracy": probes.heldout_accuracy(x, labels, cfg.probe_test_fraction, cfg.seed),
                             "chance": probes.chance_accuracy(labels), "n_images": len(labels)})
    return pd.DataFrame(rows)


def _edited_scores(train: LayerData, test: LayerData, edit: erasure.Eraser, cfg: InterventionConfig) -> dict:
    """What an edit leaves: hospital / tumour probes retrained on the edited probe-training images and
    scored on the edited probe-test images, and the trained head on the edited OOD images."""
    x_train, x_test = edit(train.train), edit(test.train)
    return {"hospital_probe_acc": probes.fitted_accuracy(x_train, train.hospital, x_test, test.hospital, cfg.seed),
            "tumour_probe_acc": probes.fitted_accuracy(x_train, train.tumour, x_test, test.tumour, cfg.seed),
            "head_ood_acc": head_accuracy(train.head, edit(train.ood), train.ood_tumour)}


def _unedited(h: np.ndarray) -> np.ndarray:
    return h


def ablation_table(data: LayerData, cfg: InterventionConfig) -> pd.DataFrame:
    """No edit, then each erasure method and `random_draws` random subspaces of the rank it removed.

    Erasers are fitted on the probe-training images only, beside the interval a no-information
    hospital probe lands in on the probe-test images (`hospital_chance_lo/hi`).
    """
    train, test = data.split(cfg.probe_test_fraction, cfg.seed)
    fitters = {
        "rowspace": lambda: erasure.probe_rowspace(train.train, train.hospital, cfg.seed),
        "inlp": lambda: erasure.inlp(train.train, train.hospital, rounds=cfg.inlp_rounds, seed=cfg.seed),
        "leace": lambda: erasure.leace(train.train, train.hospital),
    }
    rows = [{"method": "none", "variant": "none", "draw": 0, "rank": 0, **_edited_scores(train, test, _unedited, cfg)}]
    for method, fit_eraser in fitters.items():
        erase, rank = fit_eraser()
        rows.append({"method": method, "variant": "erased", "draw": 0, "rank": rank,
                     **_edited_scores(train, test, erase, cfg)})
        for draw in range(cfg.random_draws):
            control = erasure.random_subspace(train.train, rank, seed=stable_seed("random-subspace", cfg.seed, method, draw))
            rows.append({"method": method, "variant": "random", "draw": draw, "rank": rank,
                         **_edited_scores(train, test, control, cfg)})
    lo, hi = probes.chance_interval(data.hospital, cfg.probe_test_fraction)
    return pd.DataFrame(rows).assign(hospital_chance=probes.chance_accuracy(data.hospital), hospital_chance_lo=lo,
                                     hospital_chance_hi=hi, tumour_chance=probes.chance_accuracy(data.tumour),
                                     n_probe_train=len(train.hospital), n_probe_test=len(test.hospital))


def steering_table(data: LayerData, cfg: InterventionConfig) -> pd.DataFrame:
    """Dose-response of the head on OOD along the hospital LDA-1 direction and `random_draws` random ones.

    Each direction's rows carry its monotonicity flag (head OOD accuracy never rises with |a|) and
    the slope of mean |ΔP(tumour)| against |a| with its bootstrap interval over OOD images.
    """
    dim = data.train.shape[1]
    directions = [("hospital", 0, steering.lda_direction(data.train, data.hospital))]
    directions += [("random", draw, steering.random_direction(dim, stable_seed("random-direction", cfg.seed, draw)))
                   for draw in range(cfg.random_draws)]
    frames = []
    for name, draw, direction in directions:
        curve = steering.dose_response(data.head, data.ood, data.ood_tumour, direction, cfg.steering_strengths,
                                       scale_features=data.train)
        slope = steering.shift_slope(data.head, data.ood, direction, cfg.steering_strengths, n_boot=cfg.bootstrap_samples,
                                     seed=stable_seed("steering-bootstrap", cfg.seed, name, draw), scale_features=data.train)
        frames.append(curve.assign(direction=name, draw=draw, monotone=steering.monotone_in_magnitude(curve), **slope))
    columns = ["direction", "draw", "strength", "sigma", "accuracy", "mean_abs_shift", "flip_rate", "monotone",
               "slope", "slope_lo", "slope_hi", "spearman_rho"]
    return pd.concat(frames, ignore_index=True)[columns]


def neuron_table(data: LayerData, cfg: InterventionConfig) -> pd.DataFrame:
    """Top-K hospital-selective channels ablated, beside random-K draws and top-K tumour-selective channels.

    K values beyond the channel count are capped at it; ablation replaces a channel by its training
    mean (`ablation: mean`) or by zero. Selectivities and means come from the probe-training images
    (as in `ablation_table`).
    """
    train, test = data.split(cfg.probe_test_fraction, cfg.seed)
    n_channels = data.train.shape[1]
    ks = sorted({min(int(k), n_channels) for k in cfg.neuron_k})
    fill = train.train.mean(0) if cfg.ablation == "mean" else np.zeros(n_channels)
    ranked = {"hospital": neurons.selectivity(train.train, train.hospital),
              "tumour": neurons.selectivity(train.train, train.tumour)}
    rows = []
    for k in ks:
        chosen = [(name, 0, neurons.top_channels(scores, k)) for name, scores in ranked.items()]
        chosen += [("random", draw, neurons.random_channels(n_channels, k, stable_seed("random-k", cfg.seed, k, draw)))
                   for draw in range(cfg.random_k_draws)]
        for ranking, draw, channels in chosen:
            scores = _edited_scores(train, test, partial(neurons.mean_ablate, channels=channels, means=fill), cfg)
            rows.append({"ranking": ranking, "k": k, "draw": draw, **scores})
    return pd.DataFrame(rows).assign(ablation=cfg.ablation, n_channels=n_channels)


def run_interventions(run_dir: str | Path, cfg: InterventionConfig, device: str = "cpu") -> dict[str, pd.DataFrame]:
    """The four tables of one finished Camelyon17 run (see the module docstring)."""
    epoch = choose_epoch(run_dir, cfg.checkpoint)
    splits = run_splits(run_dir)
    train, ood = splits["train"], splits["ood"]
    hospital, tumour = train.hospitals.numpy(), train.labels.numpy()
    epochs = checkpoint_epochs(run_dir)
    builders = (("ablation", ablation_table), ("steering", steering_table), ("neurons", neuron_table))
    progress = Progress(f"interventions on {Path(run_dir).name}", len(epochs) + 1 + len(builders), "parts")
    train_features = {e: _numpy(block_features(run_dir, e, train, device))
                      for e in progress.track(epochs)}  # one part per checkpoint's features
    data = LayerData(train=train_features[epoch][HEAD_LAYER], hospital=hospital, tumour=tumour,
                     ood=_numpy(block_features(run_dir, epoch, ood, device))[HEAD_LAYER],
                     ood_tumour=ood.labels.numpy(), head=fc_head(load_model(run_dir, epoch)))
    tables = {"probes": probe_table(train_features, hospital, tumour, cfg).assign(selected=lambda t: t["epoch"] == epoch)}
    progress.update(progress.done + 1, f"probes: {len(tables['probes'])} rows; interventions at epoch {epoch}",
                    force=True)
    for name, build in builders:
        tables[name] = build(data, cfg).assign(epoch=epoch)
        progress.update(progress.done + 1, f"{name}: {len(tables[name])} rows", force=True)
    progress.finish()
    return tables
