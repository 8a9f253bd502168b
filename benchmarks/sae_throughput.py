"""SAE training throughput (tokens/s) against the machine's fp32 matmul roofline and SAELens.

Times the project's real training step (`interplab.sae.trainer.FusedStep`: forward, hand-written
backward with the decoder-norm-weighted L1, grad-norm clip, the trainer's Adam (lazy encoder), alive
tracking, a logged step every 10) and, in the same run, SAELens's own standard-SAE training step
(`SAETrainer.step`, ReLU + L1, Adam, clip 1.0) on identical shapes and identical random batches.
SAELens runs in its own virtual environment (never a project dependency); this script re-invokes
itself there with --saelens-worker. The roofline is the median rate of a 2048³ fp32 matmul in the
same run, measured before and after the SAE timings.

FLOP accounting: an SAE step is conventionally 12·d·F FLOP per token (forward 4dF, backward 8dF);
`*_fraction_of_roofline` = tokens/s ÷ (roofline FLOP/s ÷ 12·d·F), the fraction of the matmul-bound
token rate, taken per rep against a 2048³ matmul timed right before and after that rep (the box may
be shared, so the roofline of the moment is the fair yardstick), median over reps. Our step executes only 10·d·F (b_pre's gradient through the encoder is a
matrix-vector product after summing over the batch), reported as `executed_gflops`.

Setup for the SAELens side (once):
    python3 -m venv /tmp/saelens-venv && /tmp/saelens-venv/bin/pip install torch==2.14.1 && \
        /tmp/saelens-venv/bin/pip install sae-lens
Run: .venv/bin/python benchmarks/sae_throughput.py [--threads 2] [--shapes 3] [--out PATH]
     [--saelens-python /tmp/saelens-venv/bin/python]
Writes benchmarks/results/sae_throughput.json; the numbers go into benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

BATCH = 4096
# (d_in, d_sae, timed steps, reps): the default shape, the mid shape, a Pythia-410M layer.
SHAPES = [(128, 1024, 30, 3), (512, 4096, 6, 3), (1024, 32768, 2, 1)]
WARMUP = 2


def batches(d_in: int, n: int = 4) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randn(BATCH, d_in, generator=generator) for _ in range(n)]


def timed(step, data: list[torch.Tensor], n_timed: int) -> dict:
    """Tokens/s over `n_timed` steps after WARMUP untimed ones, with the matmul rate just before
    and after: the box is shared, so each rep is normalised by the roofline of its own moment."""
    for i in range(WARMUP):
        step(data[i % len(data)], i)
    before = matmul_roofline(seconds=1.0, windows=1)
    start = time.perf_counter()
    for i in range(n_timed):
        step(data[i % len(data)], WARMUP + i)
    tokens_per_s = n_timed * BATCH / (time.perf_counter() - start)
    return {"tokens_per_s": tokens_per_s, "roofline_gflops": (before + matmul_roofline(seconds=1.0, windows=1)) / 2}


def matmul_roofline(seconds: float = 2.0, windows: int = 3) -> float:
    """Median GFLOP/s of a 2048³ fp32 matmul over `windows` windows of `seconds`."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(3):
        a @ b
    rates = []
    for _ in range(windows):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            a @ b
            count += 1
        rates.append(count * 2 * 2048**3 / elapsed / 1e9)
    return statistics.median(rates)


def ours(d_in: int, d_sae: int, n_timed: int) -> dict:
    from interplab.sae import L1Policy, SparseAutoencoder, TrainConfig
    from interplab.sae.l1 import LambdaController
    from interplab.sae.trainer import FusedStep, make_optimizer

    cfg = TrainConfig(d_in=d_in, d_sae=d_sae, l1=L1Policy("sum", 1e-3), training_tokens=BATCH, batch_size=BATCH)
    sae = SparseAutoencoder(d_in, d_sae).initialize(torch.Generator().manual_seed(0))
    step = FusedStep(sae, make_optimizer(sae, cfg), LambdaController(cfg.l1), cfg)
    return timed(lambda x, i: step(x, i + 1, (i + 1) % cfg.log_every == 0), batches(d_in), n_timed)


def saelens(d_in: int, d_sae: int, n_timed: int) -> dict:
    """SAELens's standard trainer step (`SAETrainer.step`), timed the same way as ours."""
    from sae_lens import SAETrainer, StandardTrainingSAE, StandardTrainingSAEConfig
    from sae_lens.config import SAETrainerConfig

    sae = StandardTrainingSAE(StandardTrainingSAEConfig(d_in=d_in, d_sae=d_sae, l1_coefficient=1e-3))
    data = batches(d_in)
    trainer = SAETrainer(cfg=SAETrainerConfig(total_training_samples=10**9, train_batch_size_samples=BATCH,
                                              device="cpu", lr_end=3e-4),
                         sae=sae, data_provider=iter(data))

    def step(x, i):
        trainer.step(x)
        trainer.n_training_steps += 1
    return timed(step, data, n_timed)


def saelens_worker(threads: int, shapes: list) -> None:
    torch.set_num_threads(threads)
    import sae_lens

    out = {"sae_lens_version": sae_lens.__version__, "reps": {}}
    for d_in, d_sae, n_timed, reps in shapes:
        out["reps"][f"{d_in}x{d_sae}"] = [saelens(d_in, d_sae, n_timed) for _ in range(reps)]
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--saelens-python", default="/tmp/saelens-venv/bin/python")
    parser.add_argument("--shapes", type=int, default=len(SHAPES), help="time only the first N shapes")
    parser.add_argument("--saelens-worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "sae_throughput.json"))
    args = parser.parse_args()
    shapes = SHAPES[:args.shapes]
    if args.saelens_worker:
        return saelens_worker(args.threads, shapes)
    torch.set_num_threads(args.threads)
    roofline_before = matmul_roofline()
    ours_reps = {f"{d}x{f}": [ours(d, f, n) for _ in range(reps)] for d, f, n, reps in shapes}
    worker = subprocess.run([args.saelens_python, __file__, "--saelens-worker", "--threads", str(args.threads),
                             "--shapes", str(args.shapes)],
                            capture_output=True, text=True, check=True)
    theirs = json.loads(worker.stdout.strip().splitlines()[-1])
    roofline_after = matmul_roofline()
    roofline = statistics.median([roofline_before, roofline_after])
    rows = []
    for d_in, d_sae, _, _ in shapes:
        key, flop_per_token = f"{d_in}x{d_sae}", 12 * d_in * d_sae
        row = {"shape": key}
        for name, reps in (("ours", ours_reps[key]), ("saelens", theirs["reps"][key])):
            row[f"{name}_tokens_per_s"] = round(statistics.median(r["tokens_per_s"] for r in reps))
            row[f"{name}_reps"] = [round(r["tokens_per_s"]) for r in reps]
            # Per rep: tokens/s over the token rate the matmul roofline of that moment allows.
            row[f"{name}_fraction_of_roofline"] = round(statistics.median(
                r["tokens_per_s"] * flop_per_token / (r["roofline_gflops"] * 1e9) for r in reps), 3)
        row["speedup_vs_saelens"] = round(row["ours_tokens_per_s"] / row["saelens_tokens_per_s"], 2)
        row["normalised_speedup_vs_saelens"] = round(row["ours_fraction_of_roofline"] / row["saelens_fraction_of_roofline"], 2)
        row["roofline_tokens_per_s"] = round(roofline * 1e9 / flop_per_token)
        row["executed_gflops"] = round(row["ours_tokens_per_s"] * 10 * d_in * d_sae / 1e9, 1)
        rows.append(row)
    result = {
        "machine": {"processor": platform.processor() or platform.machine(), "threads": args.threads,
                    "torch": torch.__version__, "sae_lens": theirs["sae_lens_version"], "batch": BATCH},
        "matmul_roofline_gflops": round(roofline, 1),
        "roofline_before_after_gflops": [round(roofline_before, 1), round(roofline_after, 1)],
        "shapes": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
