"""K SAEs trained in one pass (GroupTrainer) against K separate jobs over the same data, on CPU.

The default shapes when this was measured: 3 trials × 4 layers = 12 SAEs at d = 128, F = 1024,
batch 256 (the default is now 128), a 65,536-token mixing buffer, each layer a float16
activation cache of 131,072 tokens in 65,536-token shards (as `make run` writes them; random
residual-like rows, since only the data movement matters here).
"Separate" is what the DAG did before layer groups: one SAETrainer per (trial, layer), each reading
its layer's cache itself (hash check, float16 → float32, its own mixing buffer). "Grouped" is one
GroupTrainer over a LayerStack of the 4 caches. Both train every SAE for the same steps on the same
batch order; SAE-tokens/s counts tokens × SAEs.

Run: .venv/bin/python benchmarks/sae_group.py [--steps 300] [--threads 1] [--out PATH]
Writes benchmarks/results/sae_group.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import torch

from interplab.activations import FORMAT_VERSION, ActivationCache, ShardWriter
from interplab.io import write_json
from interplab.sae import AdaptiveL1, L1Policy, TrainConfig
from interplab.sae.sources import LayerStack, layer_columns
from interplab.sae.trainer import GroupTrainer, Member, SAETrainer

D, F, BATCH, TOKENS, SHARD, LAYERS = 128, 1024, 256, 131072, 65536, 4
TRIALS = {"A": L1Policy("mean", 0.9), "B": L1Policy("sum", 5e-3),
          "C": L1Policy("sum", 1e-3, AdaptiveL1(target_l0=8, rate=0.05, update_interval=5))}


def write_cache(directory: Path, rows: torch.Tensor, layer: int) -> ActivationCache:
    directory.mkdir(parents=True)
    writer = ShardWriter(directory, "train", torch.float16, SHARD)
    writer.append(rows)
    shards = writer.close()
    write_json(directory / "manifest.json", {
        "format_version": FORMAT_VERSION, "model": "bench", "revision": "final", "source": "synthetic", "loader": "",
        "hook": f"blocks.{layer}.hook_resid_post", "layer": layer, "d_model": D, "dtype": "float16",
        "context_length": 128, "token_stream_sha256": "bench",
        "splits": {"train": {"n_tokens": TOKENS, "shards": shards}, "heldout": {"n_tokens": 0, "shards": []}}})
    return ActivationCache(directory)


def config(l1: L1Policy, steps: int, layer: int) -> TrainConfig:
    return TrainConfig(d_in=D, d_sae=F, l1=l1, training_tokens=steps * BATCH, batch_size=BATCH, lr=3e-3,
                       buffer_tokens=65536, log_every=10, init_seed=layer, data_seed=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "sae_group.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        mixing = torch.randn(256, D, generator=generator)
        caches = [write_cache(root / f"L{layer}", torch.relu(torch.randn(TOKENS, 256, generator=generator) - 1) @ mixing,
                              layer) for layer in range(LAYERS)]
        start = time.perf_counter()
        for trial, l1 in TRIALS.items():
            for layer, cache in enumerate(caches):
                SAETrainer(config(l1, args.steps, layer), cache, root / f"alone-{trial}-{layer}").train()
        separate = time.perf_counter() - start
        members = {(trial, layer): Member(config(l1, args.steps, layer), root / f"group-{trial}-{layer}",
                                          layer_columns(layer, D))
                   for trial, l1 in TRIALS.items() for layer in range(LAYERS)}
        start = time.perf_counter()
        GroupTrainer(members, LayerStack(caches)).train()
        grouped = time.perf_counter() - start
    sae_tokens = len(TRIALS) * LAYERS * args.steps * BATCH
    result = {"shapes": {"d_in": D, "d_sae": F, "batch": BATCH, "saes": len(TRIALS) * LAYERS, "steps": args.steps,
                         "cache_tokens_per_layer": TOKENS},
              "threads": args.threads, "torch": torch.__version__, "machine": platform.processor() or platform.machine(),
              "separate_seconds": separate, "grouped_seconds": grouped,
              "separate_sae_tokens_per_s": sae_tokens / separate, "grouped_sae_tokens_per_s": sae_tokens / grouped,
              "speedup": separate / grouped}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
