"""A synthetic activation source with a known dictionary, to check SAE recovery against truth.

x = Σ_i a_i·D_i (+ optional Gaussian noise), with F_true unit directions D_i in R^d and codes
a_i = 0 with probability α, else U[0, 1] — the toy-model feature law of docs/science.md §2, so α means
the same thing in both experiments and the true L0 is F_true·(1 − α). Whatever trains on these
activations can be scored by the mean max cosine similarity (MMCS) of its decoder to D.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import torch
from safetensors.torch import load_file, save_file

from interplab import activations
from interplab.io import PathLike, atomic_directory, stable_seed, write_json
from interplab.progress import Progress
from interplab.sae.sizes import max_cosine

CHUNK_TOKENS = 65536
GROUND_TRUTH_FILE = "ground_truth.safetensors"  # tokens generated per call, bounding the dense [tokens, F_true] code buffer


@dataclass(frozen=True)
class SyntheticConfig:
    d_model: int = 64
    n_features: int = 256
    alpha: float = 0.98
    n_tokens: int = 262144
    heldout_tokens: int = 16384
    noise_std: float = 0.0
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"synthetic alpha must be strictly between 0 and 1, got {self.alpha}")
        if self.d_model < 2 or self.n_features < 1 or self.n_tokens < 1:
            raise ValueError("synthetic source needs d_model >= 2, n_features >= 1, n_tokens >= 1")

    @property
    def true_l0(self) -> float:
        return self.n_features * (1.0 - self.alpha)


def true_dictionary(cfg: SyntheticConfig) -> torch.Tensor:
    """[F_true, d] random unit directions (isotropic Gaussian rows, normalised)."""
    generator = torch.Generator().manual_seed(stable_seed("synthetic-dictionary", cfg.seed))
    directions = torch.randn(cfg.n_features, cfg.d_model, generator=generator)
    return directions / torch.linalg.vector_norm(directions, dim=1, keepdim=True)


def sample_activations(cfg: SyntheticConfig, dictionary: torch.Tensor, n_tokens: int, split: str) -> torch.Tensor:
    """[n_tokens, d] activations of one split ('train' or 'heldout'), each split its own stream."""
    generator = torch.Generator().manual_seed(stable_seed("synthetic-activations", cfg.seed, split))
    out = torch.empty(n_tokens, cfg.d_model)
    for start in range(0, n_tokens, CHUNK_TOKENS):
        rows = min(CHUNK_TOKENS, n_tokens - start)
        codes = torch.rand(rows, cfg.n_features, generator=generator)
        codes = torch.relu_(codes.sub_(cfg.alpha)).div_(1.0 - cfg.alpha)  # 0 w.p. α, else U[0, 1]
        torch.mm(codes, dictionary, out=out[start:start + rows])
    if cfg.noise_std > 0:
        out.add_(torch.randn(out.shape, generator=generator), alpha=cfg.noise_std)
    return out


class InMemorySource:
    """An activation source over a [tokens, d] tensor: a seeded permutation per (seed, epoch)."""

    def __init__(self, activations: torch.Tensor) -> None:
        self.activations = activations
        self.d_model = activations.shape[1]
        self.n_tokens = activations.shape[0]
        self.fingerprint = hashlib.sha256(activations.contiguous().numpy().tobytes()).hexdigest()

    def batches(self, batch_size: int, seed: int, epoch: int = 0) -> Iterator[torch.Tensor]:
        generator = torch.Generator().manual_seed(stable_seed("batches", seed, epoch))
        order = torch.randperm(self.n_tokens, generator=generator)
        for start in range(0, self.n_tokens, batch_size):
            yield self.activations[order[start:start + batch_size]]


def mean_max_cosine(true_directions: torch.Tensor, learned_directions: torch.Tensor) -> float:
    """For each true direction, its best cosine with any learned one; averaged over true directions."""
    return max_cosine(true_directions, learned_directions).mean().item()


def write_cache(cfg: SyntheticConfig, out_dir: PathLike, label: str, n_tokens: Mapping[str, int], dtype: str,
                shard_tokens: int, provenance: Mapping[str, Any] | None = None) -> dict:
    """Write both splits as an activation cache (interplab.activations' format, layer 0, revision
    `final`) with the ground truth beside the shards: `ground_truth.safetensors` holds the [F_true, d]
    dictionary, its metadata and the manifest's `synthetic` block the generating config."""
    dictionary = true_dictionary(cfg)
    progress = Progress(f"synthetic cache {label} (F {cfg.n_features}, d {cfg.d_model}, α {cfg.alpha})",
                        sum(n_tokens[split] for split in activations.SPLITS), "tokens")
    with atomic_directory(out_dir) as staging:
        splits = {}
        for split in activations.SPLITS:
            writer = activations.ShardWriter(staging, split, activations.DTYPES[dtype], shard_tokens)
            writer.append(sample_activations(cfg, dictionary, n_tokens[split], split))
            shards = writer.close()
            splits[split] = {"n_tokens": sum(s["rows"] for s in shards), "shards": shards}
            progress.update(progress.done + n_tokens[split], f"{split}: {len(shards)} shards", force=True)
        save_file({"dictionary": dictionary}, str(staging / GROUND_TRUTH_FILE),
                  metadata={k: str(v) for k, v in asdict(cfg).items()})
        manifest = {
            "format_version": activations.FORMAT_VERSION, "model": label, "revision": "final",
            "source": "synthetic", "loader": "interplab.synthetic", "hook": "synthetic", "layer": 0,
            "d_model": cfg.d_model, "dtype": dtype, "context_length": 1, "token_stream_sha256": None,
            "splits": splits, "synthetic": {**asdict(cfg), "true_l0": cfg.true_l0},
        }
        write_json(staging / "manifest.json", manifest)
        if provenance is not None:
            write_json(staging / "provenance.json", provenance)
    progress.finish()
    return manifest


def load_ground_truth(cache_dir: PathLike) -> torch.Tensor:
    """The [F_true, d] dictionary a synthetic cache was generated from."""
    return load_file(str(Path(cache_dir) / GROUND_TRUTH_FILE))["dictionary"]
