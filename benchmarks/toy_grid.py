"""Toy-grid throughput: all widths × seeds of one configuration as one tensor program vs one model at a time.

Run: .venv/bin/python benchmarks/toy_grid.py [--threads 2]. Writes benchmarks/results/toy_grid.json;
the numbers are copied into benchmarks/RESULTS.md by hand with the date and machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import torch

from interplab import toy


def time_run(cfg: toy.ToyConfig) -> float:
    start = time.perf_counter()
    toy.run_config(cfg)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=400)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for n_features in (16, 64):
        widths = toy.auto_widths(n_features, 10)
        cfg = toy.ToyConfig(n_features=n_features, alpha=0.9, student_widths=widths, seeds=(0, 1, 2),
                            steps=args.steps, batch_size=256, eval_samples=4096)
        batched = time_run(cfg)
        looped = sum(time_run(dataclasses.replace(cfg, student_widths=(w,), seeds=(s,)))
                     for w in widths for s in cfg.seeds)
        n_models = len(widths) * len(cfg.seeds)
        results.append({"n_features": n_features, "models": n_models, "steps": args.steps,
                        "batched_s": round(batched, 2), "one_at_a_time_s": round(looped, 2),
                        "speedup": round(looped / batched, 2),
                        "model_steps_per_s_batched": round(n_models * args.steps / batched)})
        print(results[-1], flush=True)
    out = Path(__file__).with_name("results") / "toy_grid.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "threads": args.threads,
                               "torch": torch.__version__, "results": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
