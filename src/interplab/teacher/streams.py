"""Token streams: the tokenised corpus cut into fixed-length contexts, split into a training stream
and a held-out measurement stream, saved as one hashed safetensors file.

Documents are joined with the EOS token and cut into rows of `context_length`; a seeded
permutation of the rows picks the held-out rows, so both splits sample the whole corpus while
no held-out token is ever trained on (by the teacher or by an SAE).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from interplab.io import PathLike, atomic_path, sha256_file, stable_seed
from interplab.teacher.corpus import Document

SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class StreamSpec:
    context_length: int
    heldout_tokens: int
    train_tokens: int | None = None  # None: every remaining row (the local corpus); else a cap
    seed: int = 0


def encode_documents(docs: Iterable[Document], tokenizer, max_tokens: int | None = None,
                     batch: int = 64) -> np.ndarray:
    """Token ids of the documents, each followed by EOS; stops once `max_tokens` are collected."""
    eos = tokenizer.eos_token_id
    pieces: list[np.ndarray] = []
    total = 0
    pending: list[str] = []

    def flush() -> None:
        nonlocal total
        for ids in tokenizer(pending, add_special_tokens=False)["input_ids"]:
            pieces.append(np.asarray(ids + [eos], dtype=np.int64))
            total += len(ids) + 1
        pending.clear()

    for doc in docs:
        pending.append(doc.text)
        if len(pending) == batch:
            flush()
            if max_tokens is not None and total >= max_tokens:
                break
    if pending:
        flush()
    ids = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.int64)
    return ids if max_tokens is None else ids[:max_tokens]


def split_streams(ids: np.ndarray, spec: StreamSpec) -> dict[str, torch.Tensor]:
    """Rows of `context_length`; a seeded choice of ceil(heldout_tokens / ctx) rows is held out."""
    ctx = spec.context_length
    n_rows = len(ids) // ctx
    n_heldout = -(-spec.heldout_tokens // ctx)
    if n_heldout >= n_rows:
        raise ValueError(f"the corpus gives {n_rows} rows of {ctx} tokens, not enough for {n_heldout} held-out rows "
                         f"plus training rows: lower cache.heldout_tokens or use a larger corpus")
    rows = torch.from_numpy(ids[: n_rows * ctx].astype(np.int64)).view(n_rows, ctx)
    order = np.random.default_rng(stable_seed("token-streams", spec.seed)).permutation(n_rows)
    heldout, train = np.sort(order[:n_heldout]), np.sort(order[n_heldout:])
    if spec.train_tokens is not None:
        train = train[: -(-spec.train_tokens // ctx)]
    return {"train": rows[torch.from_numpy(train)], "heldout": rows[torch.from_numpy(heldout)]}


def take_tokens(rows: torch.Tensor, n_tokens: int, split: str) -> torch.Tensor:
    """The first ceil(n_tokens / ctx) sequences of a split; fails if the stream is shorter."""
    need = -(-n_tokens // rows.shape[1])
    if need > rows.shape[0]:
        raise ValueError(f"the {split} token stream has {rows.numel():,} tokens, fewer than the {n_tokens:,} "
                         f"requested (cache.{split}_tokens): lower it or use a larger corpus")
    return rows[:need]


def save_streams(path: PathLike, streams: dict[str, torch.Tensor]) -> str:
    """Write both splits (int32) atomically; return the file's sha256 (the token-stream hash)."""
    with atomic_path(path) as tmp:
        save_file({split: streams[split].to(torch.int32).contiguous() for split in SPLITS}, str(tmp))
    return sha256_file(path)


def load_streams(path: PathLike) -> dict[str, torch.Tensor]:
    if not Path(path).is_file():
        raise FileNotFoundError(f"token streams {path} not found: build them with `snakemake {path}`")
    return {split: tensor.to(torch.int64) for split, tensor in load_file(str(path)).items()}
