"""Where a layer group's SAEs read their activations: every layer of the group side by side, one row per token.

Both sources yield float32 [tokens, n_layers·d_model] rows, layer i in columns `layer_columns(i)`, so
one pass over the data feeds every (trial, layer) SAE of the group:

- `LayerStack` reads the layers' activation caches; each shard of each layer is read once per epoch
  however many SAEs train on it, in the order `ActivationCache.batches` would give one layer alone.
- `LMStream` runs the language model live through TransformerBridge hooks (one forward per batch
  of sequences feeds every layer) and writes nothing to disk: at paper scale the training cache it
  replaces would be 2 GB per layer per million tokens.
"""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np
import torch

from interplab.activations import ActivationCache, CacheError, resid_post_batches, shuffled_batches
from interplab.io import sha256_json, stable_seed


class LayerStack:
    """Several layers' caches of the same tokens, read shard by shard and concatenated along features."""

    def __init__(self, caches: Sequence[ActivationCache]) -> None:
        if not caches:
            raise ValueError("a layer stack needs at least one cache")
        first = caches[0]
        for cache in caches[1:]:
            same = (cache.manifest["token_stream_sha256"] == first.manifest["token_stream_sha256"]
                    and [s["rows"] for s in cache.shards] == [s["rows"] for s in first.shards]
                    and cache.d_model == first.d_model)
            if not same:
                raise CacheError(f"caches {first.path} and {cache.path} do not hold the same tokens in the same "
                                 f"shards; rebuild them from one cache job")
        self.caches = list(caches)
        self.layer_d_model = first.d_model
        self.d_model = first.d_model * len(caches)
        self.fingerprint = (caches[0].fingerprint if len(caches) == 1
                            else sha256_json([cache.fingerprint for cache in caches]))

    def _shard(self, index: int) -> torch.Tensor:
        return torch.cat([cache.load_shard(index) for cache in self.caches], dim=1)

    def batches(self, batch_size: int, seed: int, epoch: int = 0) -> Iterator[torch.Tensor]:
        return shuffled_batches(len(self.caches[0].shards), self._shard, batch_size, seed, epoch)


class LMStream:
    """Residual-stream rows computed on the fly: each epoch runs the token stream's sequences, in a
    seeded order, through the model and yields every requested layer's resid_post side by side."""

    def __init__(self, bridge: Any, tokens: torch.Tensor, layers: Sequence[int], sequences_per_forward: int,
                 device: str, fingerprint: str) -> None:
        self.bridge, self.tokens, self.layers = bridge, tokens, list(layers)
        self.sequences_per_forward, self.device = sequences_per_forward, device
        self.layer_d_model = int(bridge.cfg.d_model)
        self.d_model = self.layer_d_model * len(self.layers)
        self.fingerprint = fingerprint  # the caller's identity of (model weights, token stream, layers)

    def batches(self, batch_size: int, seed: int, epoch: int = 0) -> Iterator[torch.Tensor]:
        """`batch_size` is ignored: a chunk is one forward's tokens (the mixing buffer re-batches them)."""
        order = np.random.default_rng(stable_seed("lm-stream", seed, epoch)).permutation(self.tokens.shape[0])
        shuffled = self.tokens[torch.from_numpy(order)]
        for acts in resid_post_batches(self.bridge, shuffled, self.layers, self.sequences_per_forward, self.device):
            yield torch.cat([acts[layer].float() for layer in self.layers], dim=1)


def layer_columns(index: int, layer_d_model: int) -> slice:
    """The columns of a group row that hold the group's `index`-th layer."""
    return slice(index * layer_d_model, (index + 1) * layer_d_model)
