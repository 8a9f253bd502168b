"""Activation-caching throughput: the default teacher on this machine, and Pythia-410M's cost.

Both models go through the real path: an HF directory booted by `load_bridge`, one forward per
batch capturing every layer's resid_post, shards written by `build_caches`. Pythia-410M is built
from its architecture with random weights (no download; the cost does not depend on the weights)
and timed on a few sequences, which gives the time and disk per layer per million tokens.

Run: .venv/bin/python benchmarks/cache_throughput.py [--threads 2] [--device auto] [--pythia-tokens 4096]
Writes benchmarks/results/cache_throughput.json; the numbers go into benchmarks/RESULTS.md by hand.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from interplab.activations import CacheSpec, build_caches
from interplab.runtime import resolve_device
from interplab.teacher.bridge import BridgeSpec, load_bridge
from interplab.teacher.corpus import stdlib_documents
from interplab.teacher.tokenizer import train_tokenizer
from interplab.teacher.config import TeacherConfig
from interplab.teacher.train import build_model, save_checkpoint

# EleutherAI/pythia-410m's config.json (architecture only).
PYTHIA_410M = dict(vocab_size=50304, hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                   intermediate_size=4096, max_position_embeddings=2048, rotary_pct=0.25, use_parallel_residual=True,
                   bos_token_id=0, eos_token_id=0, tie_word_embeddings=False)


def time_caching(model_dir: Path, n_seq: int, ctx: int, batch_size: int, layers: list[int], device: str,
                 dtype: str, workdir: Path) -> dict:
    bridge = load_bridge(BridgeSpec(source="local", name=str(model_dir), device=device))
    vocab = int(bridge.cfg.d_vocab)
    tokens = torch.randint(0, vocab, (n_seq, ctx), generator=torch.Generator().manual_seed(0))
    streams = {"train": tokens[: n_seq - batch_size], "heldout": tokens[n_seq - batch_size:]}
    spec = CacheSpec(model=model_dir.name, revision="bench", source="local", layers=layers, dtype=dtype,
                     shard_tokens=65536, batch_size=batch_size)
    warm = {"train": tokens[:batch_size], "heldout": tokens[:batch_size]}  # first call pays one-off costs
    build_caches(bridge, warm, spec, {l: workdir / "warm" / f"L{l:02d}" for l in layers}, "bench", device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    build_caches(bridge, streams, spec, {l: workdir / "run" / f"L{l:02d}" for l in layers}, "bench", device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    n_tokens = n_seq * ctx
    bytes_per_layer = sum(p.stat().st_size for p in (workdir / "run" / f"L{layers[0]:02d}").glob("*.safetensors"))
    return {"tokens": n_tokens, "layers": len(layers), "seconds": round(seconds, 2),
            "tokens_per_s": round(n_tokens / seconds, 1), "d_model": int(bridge.cfg.d_model),
            "disk_bytes_per_token_per_layer": bytes_per_layer / n_tokens}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--default-tokens", type=int, default=65536)
    parser.add_argument("--pythia-tokens", type=int, default=4096)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    tokenizer = train_tokenizer((d.text for d in stdlib_documents()[:20]), 4096)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        cfg = TeacherConfig()
        save_checkpoint(build_model(cfg), tokenizer, tmp / "stdlib-neox", {})
        results["default"] = time_caching(tmp / "stdlib-neox", args.default_tokens // cfg.context_length,
                                          cfg.context_length, 16, list(range(cfg.n_layers)), device, "float16",
                                          tmp / "c1")
        print("default", results["default"], flush=True)
        torch.manual_seed(0)
        pythia = GPTNeoXForCausalLM(GPTNeoXConfig(**PYTHIA_410M))
        save_checkpoint(pythia, tokenizer, tmp / "pythia-410m-arch", {})
        del pythia
        ctx = 1024
        run = time_caching(tmp / "pythia-410m-arch", max(2, args.pythia_tokens // ctx), ctx, 1, list(range(24)),
                           device, "float16", tmp / "c2")
        seconds_per_mtok = 1e6 / run["tokens_per_s"]
        run["estimate"] = {
            "hours_per_million_tokens_all_24_layers_one_pass": round(seconds_per_mtok / 3600, 3),
            "hours_per_layer_per_million_tokens_amortised": round(seconds_per_mtok / 3600 / 24, 4),
            "disk_gb_per_layer_per_million_tokens_fp16": round(run["disk_bytes_per_token_per_layer"] * 1e6 / 1e9, 3),
            "hours_for_350M_tokens_all_layers": round(350 * seconds_per_mtok / 3600, 1),
            "disk_tb_for_350M_tokens_all_layers_fp16": round(
                350e6 * 24 * run["disk_bytes_per_token_per_layer"] / 1e12, 1),
        }
        results["pythia_410m"] = run
        print("pythia-410m", run, flush=True)
    out = Path(__file__).with_name("results") / "cache_throughput.json"
    out.parent.mkdir(exist_ok=True)
    # The load average says how much the machine was shared while this ran (2 cores: above 2 means contended).
    out.write_text(json.dumps({"machine": platform.processor() or platform.machine(), "device": device,
                               "threads": args.threads, "torch": torch.__version__,
                               "load_average_1_5_15min": os.getloadavg(), "results": results},
                              indent=2) + "\n")


if __name__ == "__main__":
    main()
