"""A tiny local GPT-NeoX teacher in HF format, built by the library itself, for LM tests."""
from pathlib import Path

import torch

from interplab.teacher.corpus import stdlib_documents
from interplab.teacher.tokenizer import train_tokenizer
from interplab.teacher.config import TeacherConfig
from interplab.teacher.train import build_model, save_checkpoint

TINY = TeacherConfig(d_model=32, n_layers=3, n_heads=4, d_mlp=64, vocab_size=320, context_length=16, steps=8,
                     batch_size=4, warmup_steps=2, eval_rows=4, log_every=2)


def tiny_texts() -> list[str]:
    return [doc.text[:4000] for doc in stdlib_documents()[:12]]


def make_tiny_teacher(directory: Path, cfg: TeacherConfig = TINY) -> tuple[Path, object]:
    """An untrained tiny GPT-NeoX and its tokenizer saved as one HF directory."""
    tokenizer = train_tokenizer(tiny_texts(), cfg.vocab_size)
    target = Path(directory) / "tiny"
    with torch.random.fork_rng(devices=[]):  # the same weights whatever ran before in the process
        torch.manual_seed(0)
        model = build_model(cfg)
    save_checkpoint(model, tokenizer, target, {"test": True})
    return target, tokenizer
