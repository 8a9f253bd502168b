"""The paper's toy grid (configs/paper.yaml): its CPU time and its fraction of the machine's FLOP and memory limits.

Work model per training step of S seeds × M models of F features at batch B, for the engine the
config resolves to here:
- native (toy_kernel.c, all widths in one stack): per model and sample, z and ∂L/∂A each cost
  2·nnz·F_p FLOPs (nnz = (1 − α)·F nonzero features, F_p = F padded to 16) plus about 8·F_p for
  the residual and its sums; in distill mode the teacher's output costs 2·nnz·F_p per seed and
  sample. Bytes are what leaves the caches: the random words (4·B·F per seed) and the sparse rows
  (8 bytes per nonzero), written once and read once per register group of models.
- torch (toy.FusedStep, per width group of M models padded to d_max): five matmuls of
  2·B·F·(d_max or d_max + 1) FLOPs per model; eight passes of 4 bytes over the [S, M, B, F]
  tensors (matmul output, target subtraction reading two and writing one, ReLU backward reading
  two and writing one, two gradient matmuls reading one each), three more on the steps that
  record the loss.
The limits are measured here on one thread: a large float32 matmul (FLOP/s) and a large tensor
copy (bytes/s, read + write).

Time comes from a finished run's Snakemake benchmark files (`--from-benchmarks results/benchmarks/toy/runs`:
the wall seconds of every toy_run job, Python start-up included; their cpu_time is sampled in steps
of about 15 s, too coarse for jobs of 20–80 s) or, without one, from running every configuration for
`--sample-steps` n and 2n steps and extrapolating linearly to the configured steps.

Run: PYTHONPATH=src .venv/bin/python benchmarks/toy_grid.py [--from-benchmarks DIR]. Writes
benchmarks/results/toy_grid.json; the numbers are copied into benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import time
from pathlib import Path

import pandas as pd
import torch
import yaml

from interplab import toy
from interplab.toy_native import LANES, padded_features

PASSES_PER_STEP = 8
PASSES_WHEN_MEASURED = 3
REGISTER_VECTORS = 12  # accumulator vectors per register group in the native kernel
RESIDUAL_FLOPS = 8  # per padded output: the target subtraction, ReLU mask, gradient and bias sums


def torch_group_work(n_seeds: int, widths: tuple[int, ...], n_features: int, batch: int) -> tuple[float, float]:
    """(FLOPs, bytes) of one torch step of one width group, as the fused step computes it."""
    models, d_max = n_seeds * len(widths), max(widths)
    flops = 2.0 * batch * n_features * models * (3 * d_max + 2 * (d_max + 1))
    bytes_moved = 4.0 * PASSES_PER_STEP * models * batch * n_features
    return flops, bytes_moved


def native_stack_work(n_seeds: int, n_models: int, cfg: toy.ToyConfig, distilled: bool) -> tuple[float, float]:
    """(FLOPs, bytes) of one native step of a stack of n_models per seed."""
    padded = padded_features(cfg.n_features)
    nonzeros = (1.0 - cfg.alpha) * cfg.n_features
    samples = n_seeds * cfg.batch_size
    flops = samples * n_models * (4.0 * nonzeros * padded + RESIDUAL_FLOPS * padded)
    if distilled:
        flops += samples * 2.0 * nonzeros * padded
    groups = -(-n_models * (padded // LANES) // REGISTER_VECTORS)
    bytes_moved = samples * (4.0 * cfg.n_features + 8.0 * nonzeros * (1 + groups))
    return flops, bytes_moved


def config_work(cfg: toy.ToyConfig, engine: str) -> dict:
    """FLOPs and bytes of a whole configuration: teacher steps plus student steps."""
    n_seeds = len(cfg.seeds)
    parts = []  # (steps, FLOPs per step, bytes per step averaged over measured and plain steps)
    if engine == "native":
        distilled = cfg.teacher_width is not None
        parts.append((cfg.steps, *native_stack_work(n_seeds, len(cfg.student_widths), cfg, distilled)))
        if cfg.teacher_width is not None:
            parts.append((cfg.teacher_steps, *native_stack_work(n_seeds, 1, cfg, False)))
    else:
        groups = [(cfg.steps, w) for w in toy.width_groups(cfg.student_widths)]
        if cfg.teacher_width is not None:
            groups.append((cfg.teacher_steps, (cfg.teacher_width,)))
        measured_passes = 1.0 + cfg.final_fraction * PASSES_WHEN_MEASURED / PASSES_PER_STEP
        for steps, widths in groups:
            flops, bytes_moved = torch_group_work(n_seeds, widths, cfg.n_features, cfg.batch_size)
            parts.append((steps, flops, bytes_moved * measured_passes))
    return {"flops": sum(steps * flops for steps, flops, _ in parts),
            "bytes": sum(steps * bytes_moved for steps, _, bytes_moved in parts)}


def machine_limits(size: int = 2048, copy_mb: int = 256) -> dict:
    """One-thread float32 matmul rate and copy bandwidth (read + write) per CPU second, like the grid's times."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    start = time.process_time()
    for _ in range(5):
        torch.mm(a, b)
    flops = 5 * 2.0 * size**3 / (time.process_time() - start)
    src = torch.randn(copy_mb * 2**20 // 4)
    dst = torch.empty_like(src)
    dst.copy_(src)
    start = time.process_time()
    for _ in range(5):
        dst.copy_(src)
    bandwidth = 5 * 2.0 * src.numel() * 4 / (time.process_time() - start)
    return {"matmul_flops_per_s": flops, "copy_bytes_per_s": bandwidth}


def measured_cpu_seconds(configs: dict[str, toy.ToyConfig], bench_dir: Path | None, sample_steps: int) -> dict[str, float]:
    """Seconds per configuration: wall seconds of each job from Snakemake benchmark files, or CPU seconds
    of runs of n and 2n steps extrapolated linearly to the configured steps (the difference is n
    steps' cost; the rest, setup and evaluation, is paid once)."""
    if bench_dir is not None:
        return {name: float(pd.read_csv(bench_dir / f"{name}.tsv", sep="\t")["s"].iloc[0]) for name in configs}
    seconds = {}
    for name, cfg in configs.items():
        cost = []
        for steps in (sample_steps, 2 * sample_steps):
            start = time.process_time()
            toy.run_config(dataclasses.replace(cfg, steps=steps, teacher_steps=steps))
            cost.append(time.process_time() - start)
        per_step = (cost[1] - cost[0]) / sample_steps
        seconds[name] = cost[0] + per_step * (cfg.steps - sample_steps)
        print(name, round(seconds[name], 1), flush=True)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="configs/paper.yaml")
    parser.add_argument("--from-benchmarks", type=Path, default=None)
    parser.add_argument("--sample-steps", type=int, default=300)
    parser.add_argument("--cores", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    defaults = yaml.safe_load(Path("config.yaml").read_text())["toy"]
    section = {**defaults, **yaml.safe_load(Path(args.config).read_text())["toy"]}
    configs = toy.grid(section)
    engine = toy.resolve_engine(section["engine"], "cpu")
    limits = machine_limits()
    cpu = measured_cpu_seconds(configs, args.from_benchmarks, args.sample_steps)
    work = {name: config_work(cfg, engine) for name, cfg in configs.items()}
    total_cpu = sum(cpu.values())
    total_flops = sum(w["flops"] for w in work.values())
    total_bytes = sum(w["bytes"] for w in work.values())
    result = {
        "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
        "config": args.config, "engine": engine, "configurations": len(configs),
        "time_source": str(args.from_benchmarks or f"sampled {args.sample_steps} steps"),
        "job_seconds": round(total_cpu, 1), "wall_seconds_if_perfectly_packed": round(total_cpu / args.cores, 1),
        "tflop": round(total_flops / 1e12, 1), "terabytes_moved": round(total_bytes / 1e12, 1),
        "limits_one_thread": {k: round(v / 1e9, 1) for k, v in limits.items()},
        "achieved_gflop_per_job_s": round(total_flops / total_cpu / 1e9, 2),
        "achieved_gbytes_per_job_s": round(total_bytes / total_cpu / 1e9, 2),
        "fraction_of_matmul_limit": round(total_flops / total_cpu / limits["matmul_flops_per_s"], 3),
        "fraction_of_copy_bandwidth": round(total_bytes / total_cpu / limits["copy_bytes_per_s"], 3),
        "per_config_seconds": {k: round(v, 1) for k, v in cpu.items()},
    }
    print(json.dumps({k: v for k, v in result.items() if k != "per_config_seconds"}, indent=2))
    out = Path(__file__).with_name("results") / "toy_grid.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
