"""The mixing buffer between an activation source and the trainer: batches mix shards and contexts.

A cache stores tokens context by context and its reader shuffles only within a shard, so plain
reading makes L0 and MSE jump at shard boundaries. As in SAELens and dictionary_learning, the
buffer holds `capacity` tokens, shuffles them, serves half and refills that half from the source,
so a token waits a random number of rounds and tokens of one shard or context spread over many
batches. The stream is a pure function of (source, seed): every trial (and later every SAE of a
group trainer) reads the identical batches, and a resumed run replays the stream, without
training, up to the step it stopped at.
"""

from __future__ import annotations

from typing import Iterator, Protocol

import torch

from interplab.io import stable_seed


class ActivationSource(Protocol):
    """What the buffer reads: the activation cache's reader, or an in-memory synthetic source."""

    d_model: int
    fingerprint: str  # identifies the data: a resume on different data must start afresh

    def batches(self, batch_size: int, seed: int, epoch: int = 0) -> Iterator[torch.Tensor]: ...


def source_rows(source: ActivationSource, seed: int, read_size: int) -> Iterator[torch.Tensor]:
    """The source's rows, epoch after epoch (each epoch in the source's own seeded order)."""
    epoch = 0
    while True:
        rows = 0
        for chunk in source.batches(read_size, seed, epoch):
            rows += chunk.shape[0]
            yield chunk
        if rows == 0:
            raise ValueError("the activation source is empty: cache some tokens first")
        epoch += 1


def _to_device(rows: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Float32 rows on the training device; host rows bound for a GPU go through pinned memory, so
    the copy runs asynchronously instead of stalling the step."""
    rows = rows.to(torch.float32)
    if device.type == "cuda" and rows.device.type == "cpu":
        rows = rows.pin_memory()
    return rows.to(device, non_blocking=True)


def mixed_batches(source: ActivationSource, batch_size: int, capacity: int, seed: int,
                  start_step: int = 0, device: str | torch.device = "cpu") -> Iterator[torch.Tensor]:
    """[batch_size, d] float32 batches, from batch number `start_step` on (earlier ones are replayed, not served).

    The buffer lives on `device` (the training device), so batches never cross the host bus; only
    each refill does, once per `capacity / 2` tokens. The order does not depend on the device."""
    served_per_round = (capacity // 2 // batch_size) * batch_size
    if served_per_round == 0:
        raise ValueError(f"sae.buffer_tokens ({capacity}) must hold at least two batches of {batch_size} tokens")
    device = torch.device(device)
    generator = torch.Generator().manual_seed(stable_seed("mixing-buffer", seed))
    rows = source_rows(source, seed, read_size=batch_size)
    buffer = torch.empty(capacity, source.d_model, device=device)
    carry = torch.empty(0, source.d_model, device=device)
    empty, step = capacity, 0  # buffer[:empty] needs (re)filling: all of it on the first round
    while True:
        filled = 0
        while filled < empty:
            if carry.shape[0] == 0:
                carry = _to_device(next(rows), device)
            take = min(empty - filled, carry.shape[0])
            buffer[filled:filled + take] = carry[:take]
            carry, filled = carry[take:], filled + take
        buffer = buffer[torch.randperm(capacity, generator=generator).to(device)]
        for start in range(0, served_per_round, batch_size):
            if step >= start_step:
                yield buffer[start:start + batch_size].clone()
            step += 1
        empty = served_per_round
