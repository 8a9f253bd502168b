"""Train a small GPT-NeoX (Pythia architecture: rotary, parallel attention + MLP) on the token
streams, saving HF-format checkpoints on an exponential schedule (0, 1, 2, 4, …) plus the final one.

The checkpoints are what the DAG's `revision` wildcard studies, so each is a self-contained HF
directory (weights + tokenizer) that `load_bridge` boots exactly like a hub Pythia revision.
The held-out loss is compared with the unigram entropy of the training tokens: a teacher whose
loss is not clearly below it has learned nothing beyond token frequencies.
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, Mapping

import pandas as pd
import torch
from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

from interplab.io import PathLike, atomic_directory, sha256_file, write_json
from interplab.progress import Progress
from interplab.teacher.bridge import PROVENANCE_FILE, WEIGHTS_FILE, WEIGHTS_HASH_KEY
from interplab.runtime import seed_everything
from interplab.teacher.config import TeacherConfig, checkpoint_label, checkpoint_steps

log = logging.getLogger(__name__)


def build_model(cfg: TeacherConfig) -> GPTNeoXForCausalLM:
    config = GPTNeoXConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.d_model, num_hidden_layers=cfg.n_layers,
        num_attention_heads=cfg.n_heads, intermediate_size=cfg.d_mlp, max_position_embeddings=cfg.context_length,
        rotary_pct=cfg.rotary_pct, use_parallel_residual=True, bos_token_id=0, eos_token_id=0,
        tie_word_embeddings=False, hidden_dropout=0.0, attention_dropout=0.0,
    )
    return GPTNeoXForCausalLM(config)


def unigram_entropy(tokens: torch.Tensor, vocab_size: int) -> float:
    """Entropy (nats) of the token frequency distribution: the loss of the best context-free model."""
    counts = torch.bincount(tokens.flatten(), minlength=vocab_size).double()
    probs = counts[counts > 0] / counts.sum()
    return float(-(probs * probs.log()).sum())


def warmup_cosine(step: int, peak: float, warmup_steps: int, steps: int) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak (teacher and distilled students)."""
    if step < warmup_steps:
        return peak * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, steps - warmup_steps)
    return peak * (0.1 + 0.45 * (1 + math.cos(math.pi * progress)))


@torch.no_grad()
def heldout_loss(model: GPTNeoXForCausalLM, rows: torch.Tensor, batch_size: int) -> float:
    model.eval()
    losses = [model(input_ids=chunk, labels=chunk).loss.item() * chunk.shape[0] for chunk in rows.split(batch_size)]
    model.train()
    return sum(losses) / rows.shape[0]


def save_checkpoint(model: GPTNeoXForCausalLM, tokenizer: Any, target: PathLike, provenance: Mapping[str, Any]) -> None:
    """An HF directory (weights, config, tokenizer if given, provenance with the weights' sha256),
    renamed into place when complete; `verify_checkpoint` checks the weights against the recorded
    hash (teachers and distilled students alike)."""
    with atomic_directory(target) as staging:
        model.save_pretrained(staging)
        if tokenizer is not None:
            tokenizer.save_pretrained(staging)
        write_json(staging / PROVENANCE_FILE, {**provenance, WEIGHTS_HASH_KEY: sha256_file(staging / WEIGHTS_FILE)})


def train_teacher(cfg: TeacherConfig, streams: Mapping[str, torch.Tensor], tokenizer: Any, device: str,
                  save: Callable[[int, GPTNeoXForCausalLM], None]) -> pd.DataFrame:
    """Train on streams['train']; call `save(step, model)` at every scheduled checkpoint.

    Returns the history: one row per logged step (train loss, lr, tokens) and the held-out loss
    at every checkpoint.
    """
    train, heldout = streams["train"], streams["heldout"][: cfg.eval_rows].to(device)
    if train.shape[1] != cfg.context_length:
        raise ValueError(f"token streams have context {train.shape[1]}, the teacher expects {cfg.context_length}")
    if len(tokenizer) > cfg.vocab_size:
        raise ValueError(f"tokenizer has {len(tokenizer)} tokens, more than the teacher's vocab_size {cfg.vocab_size}")
    seed_everything(cfg.seed)
    model = build_model(cfg).to(device)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr, betas=(0.9, 0.95))
    sampler = torch.Generator().manual_seed(cfg.seed)
    schedule = set(checkpoint_steps(cfg.steps, cfg.checkpoint_factor))
    tokens_per_step = cfg.batch_size * cfg.context_length
    history: list[dict[str, float]] = []
    progress = Progress("teacher training", cfg.steps * tokens_per_step, "tokens")
    train_loss = float("nan")  # the last logged one: reading it per step would sync a GPU
    for step in range(cfg.steps + 1):
        if step in schedule:
            loss = heldout_loss(model, heldout, cfg.batch_size)
            history.append({"step": step, "tokens": step * tokens_per_step, "heldout_loss": loss})
            log.info("step %d: held-out loss %.4f (checkpoint %s)", step, loss, checkpoint_label(step, cfg.steps))
            save(step, model)
        if step == cfg.steps:
            break
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(step, cfg.lr, cfg.warmup_steps, cfg.steps)
        batch = train[torch.randint(0, train.shape[0], (cfg.batch_size,), generator=sampler)].to(device)
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if step % cfg.log_every == 0 or step == cfg.steps - 1:
            train_loss = loss.item()
            history.append({"step": step + 1, "tokens": (step + 1) * tokens_per_step, "train_loss": train_loss,
                            "lr": optimizer.param_groups[0]["lr"]})
        progress.update((step + 1) * tokens_per_step, f"step {step + 1}/{cfg.steps}, train loss {train_loss:.4f}")
    progress.finish()
    return pd.DataFrame(history)


def teacher_summary(history: pd.DataFrame, train_tokens: torch.Tensor, cfg: TeacherConfig, model: str,
                    seconds: float) -> dict[str, Any]:
    """The numbers that say whether the teacher learned anything: final held-out loss vs unigram entropy."""
    held = history.dropna(subset=["heldout_loss"])
    entropy = unigram_entropy(train_tokens, cfg.vocab_size)
    final = float(held["heldout_loss"].iloc[-1])
    return {"model": model, "steps": cfg.steps, "vocab_size": cfg.vocab_size,
            "tokens_trained": cfg.steps * cfg.batch_size * cfg.context_length,
            "unigram_entropy": entropy, "initial_heldout_loss": float(held["heldout_loss"].iloc[0]),
            "final_heldout_loss": final, "below_unigram_entropy": entropy - final,
            "train_seconds": seconds, "train_tokens_per_second": cfg.steps * cfg.batch_size * cfg.context_length / seconds,
            "checkpoints": [checkpoint_label(int(s), cfg.steps) for s in held["step"]]}
