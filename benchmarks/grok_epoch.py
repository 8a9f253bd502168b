"""Grokking-stage epoch times: the default config's runs on CPU, and ResNet-18 at 96 px on 1000 images.

Run: .venv/bin/python benchmarks/grok_epoch.py [--threads 1] [--batches 6]. Writes
benchmarks/results/grok_epoch.json; the numbers are copied into benchmarks/RESULTS.md by hand with
the date and machine.

- default runs: every Camelyon17 run and modular-addition variant of config.yaml's `grok` section,
  on the fixture the DAG would write (built here in a temporary folder), through the stage's own
  training step (`train.train_epoch`) and evaluation (`train.evaluate`);
- paper scale: ResNet-18 from scratch on 1000 random 96 px patches, batch 32, the grokking regime
  (Grokfast on), on every available device (CUDA when present, always CPU). The CPU epoch is
  extrapolated from `--batches` batches.

Both wall time and process CPU time are recorded: on a shared machine the wall time includes
waiting for the cores, and CPU time / threads is what the same work takes on an idle machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from interplab.config import validate_config
from interplab.grok import train
from interplab.grok.data import ImageSet, SplitConfig
from interplab.grok.fixture import FixtureConfig, write_fixture
from interplab.grok.grokfast import GrokfastEMA
from interplab.grok.models import init_model
from interplab.grok.runs import CamelyonSetup, Regime, RunSpec, CAMELYON, camelyon_runs, modular_runs
from interplab.grok.tasks import CamelyonTask, make_task

ROOT = Path(__file__).resolve().parents[1]


class Clock:
    """Wall and process-CPU seconds of a block."""

    def __enter__(self) -> "Clock":
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_epochs(spec: RunSpec, task, device: str, epochs: int) -> dict:
    """Seconds per training epoch (mean over `epochs`, after one warm-up epoch) and per evaluation."""
    model = init_model(spec).to(device)
    optimizer = train.make_optimizer(model, spec, device)
    grokfast = GrokfastEMA(spec.grokfast_alpha, spec.grokfast_lamb) if spec.regime.grokfast else None
    model.train()
    train.train_epoch(model, task, optimizer, grokfast, 1)
    sync(device)
    with Clock() as fit:
        for epoch in range(2, epochs + 2):
            train.train_epoch(model, task, optimizer, grokfast, epoch)
        sync(device)
    with Clock() as score:
        train.evaluate(model, task, epochs + 1)
        sync(device)
    return {"epoch_wall_s": fit.wall / epochs, "epoch_cpu_s": fit.cpu / epochs,
            "eval_wall_s": score.wall, "eval_cpu_s": score.cpu}


def run_estimate(spec: RunSpec, epochs_timed: int) -> dict:
    """Timed epochs and evaluation of one run, and its whole training CPU time (every epoch, every history row)."""
    row = time_epochs(spec, make_task(spec, "cpu"), "cpu", epochs=epochs_timed)
    evaluated = set(spec.checkpoints) | set(range(0, spec.epochs + 1, spec.eval_every))
    row = {"run": spec.name, "epochs": spec.epochs, **row, "evaluations": len(evaluated),
           "total_cpu_s": spec.epochs * row["epoch_cpu_s"] + len(evaluated) * row["eval_cpu_s"]}
    print(row, flush=True)
    return row


def default_runs() -> list[dict]:
    """Per default run: epoch and evaluation times, and the whole run's estimated CPU time."""
    config = validate_config(yaml.safe_load((ROOT / "config.yaml").read_text()))
    section = config["grok"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        fixture = FixtureConfig(**{**section["fixture"], "shortcut_hospitals": tuple(section["data"]["train_hospitals"])})
        with Clock() as build:
            write_fixture(tmp, fixture)
        rows.append({"run": "fixture", "total_wall_s": build.wall, "total_cpu_s": build.cpu})
        for spec in camelyon_runs(section, tmp).values():
            rows.append(run_estimate(spec, epochs_timed=2))
        for spec in modular_runs(section).values():
            rows.append(run_estimate(spec, epochs_timed=50))
    return [{k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()} for row in rows]


def random_patches(n: int, size: int, seed: int) -> ImageSet:
    rng = np.random.default_rng(seed)
    return ImageSet(images=torch.from_numpy(rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)),
                    labels=torch.from_numpy(rng.integers(0, 2, n)), hospitals=torch.zeros(n, dtype=torch.long),
                    slides=torch.zeros(n, dtype=torch.long), indices=np.arange(n))


def paper_scale(device: str, batches: int | None) -> dict:
    """ResNet-18, 96 px, 1000 training images, batch 32, grokking regime: one epoch (or `batches` of it)."""
    n_train, batch_size = 1000, 32
    n_images = n_train if batches is None else batches * batch_size
    setup = CamelyonSetup(data=SplitConfig(root_dir="unused"), n_train=n_images, batch_size=batch_size)
    spec = RunSpec(name="resnet18-96px-n1000", task=CAMELYON, seed=0, epochs=1, checkpoints=(0, 1), eval_every=1,
                   regime=Regime("grokking", lr=1e-3, weight_decay=1.0, init_scale=4.0, grokfast=True),
                   grokfast_alpha=0.98, grokfast_lamb=2.0, setup=setup)
    sets = {"train": random_patches(n_images, 96, 0), "id": random_patches(200, 96, 1), "ood": random_patches(200, 96, 2)}
    row = time_epochs(spec, CamelyonTask(setup, 0, device, sets), device, epochs=1)
    scale = n_train / n_images  # an epoch of 1000 images from the timed fraction
    return {"device": device, "images_timed": n_images, "epoch_wall_s": round(row["epoch_wall_s"] * scale, 2),
            "epoch_cpu_s": round(row["epoch_cpu_s"] * scale, 2), "images_per_s": round(n_images / row["epoch_wall_s"], 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the stage's jobs use 1)")
    parser.add_argument("--batches", type=int, default=6, help="CPU batches timed for the 96 px epoch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {"machine": platform.processor() or platform.machine(), "threads": args.threads,
               "torch": torch.__version__, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
               "load_average_at_start": [round(x, 2) for x in os.getloadavg()]}
    results["default_runs"] = default_runs()
    results["resnet18_96px_n1000"] = [paper_scale("cpu", args.batches)]
    if torch.cuda.is_available():
        results["resnet18_96px_n1000"].append(paper_scale("cuda", None))
    print(json.dumps(results["resnet18_96px_n1000"]), flush=True)
    out = Path(__file__).with_name("results") / "grok_epoch.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
