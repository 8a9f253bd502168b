"""Residual-stream activation caches: one LM forward per batch, every layer, sharded and hashed.

Every SAE arm must see the identical activation stream (so arms differ only in their L1 policy),
and the LM forward is the expensive part, so activations are computed once and cached on disk.

Layout (one directory per layer, written atomically: a partial directory is renamed into place
only when every shard and the manifest are on disk)::

    results/cache/{model}/{ckpt}/L{LL}/
        manifest.json          what the rows are (see below); deterministic: same config -> same bytes
        provenance.json        config subset, versions, git commit, input hashes, time
        train_00000.safetensors, train_00001.safetensors, ...     training split
        heldout_00000.safetensors, ...                             held-out measurement split

Each shard holds one tensor ``activations`` of shape [rows, d_model] in the manifest's dtype.
Row i of a split (shards in index order) is token i of that split's token stream, flattened
sequence by sequence (`token_stream_sha256` names the exact stream).

manifest.json keys: format_version, model, revision, source, loader, hook (``blocks.{L}.hook_resid_post``),
layer, d_model, dtype, context_length, token_stream_sha256, splits -> {train, heldout} ->
{n_tokens, shards: [{file, rows, sha256}]}.

Reader API (what the SAE trainer and the KD measurement use)::

    cache = ActivationCache("results/cache/stdlib-neox/final/L02")            # training split
    cache.manifest, cache.d_model, cache.n_tokens, cache.dtype, cache.layer
    for x in cache.batches(batch_size=4096, seed=0, epoch=0):               # float32 [b, d_model]
        ...                                                                   # seeded shuffle of shard
                                                                              # order and rows
    heldout = ActivationCache(path, split="heldout")
    heldout.tensor()                                                          # float32 [n_tokens, d_model]

`batches` is deterministic in (seed, epoch): each epoch permutes the shard order and the rows
within each shard, and carries leftovers across shard boundaries, so every batch but the last
has exactly `batch_size` rows (`drop_last=True` drops the short one). Every shard is checked
against its manifest sha256 as it is loaded; a corrupt or missing shard raises `CacheError`
naming the file and how to rebuild it.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from interplab.io import PathLike, atomic_directory, check_finite, read_json, sha256_file, stable_seed, write_json
from interplab.progress import Progress

FORMAT_VERSION = 1
SPLITS = ("train", "heldout")
TENSOR_KEY = "activations"
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class CacheError(RuntimeError):
    """A cache directory is incomplete or corrupt; the message names the file and the fix."""


def hook_name(layer: int) -> str:
    return f"blocks.{layer}.hook_resid_post"


def layer_dirname(layer: int) -> str:
    return f"L{layer:02d}"


def _rebuild_hint(directory: Path) -> str:
    return f"delete {directory} and rebuild it (snakemake {directory})"


class ActivationCache:
    """Read one split of one layer's cache: metadata, seeded shuffled batches, or the whole tensor."""

    def __init__(self, path: PathLike, split: str = "train", verify: bool = True):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.path = Path(path)
        self.split = split
        self.verify = verify
        manifest_path = self.path / "manifest.json"
        if not manifest_path.is_file():
            raise CacheError(f"no activation cache at {self.path}: {manifest_path.name} is missing; "
                             f"{_rebuild_hint(self.path)}")
        self.manifest: dict[str, Any] = read_json(manifest_path)
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise CacheError(f"{manifest_path} has format_version {self.manifest.get('format_version')!r}, "
                             f"this reader expects {FORMAT_VERSION}; {_rebuild_hint(self.path)}")
        self._split = self.manifest["splits"][split]

    @property
    def d_model(self) -> int:
        return int(self.manifest["d_model"])

    @property
    def n_tokens(self) -> int:
        return int(self._split["n_tokens"])

    @property
    def dtype(self) -> str:
        return str(self.manifest["dtype"])

    @property
    def layer(self) -> int:
        return int(self.manifest["layer"])

    @property
    def shards(self) -> list[dict[str, Any]]:
        return list(self._split["shards"])

    def load_shard(self, index: int) -> torch.Tensor:
        """Shard `index` (in stored order) as float32 [rows, d_model], hash-checked."""
        record = self._split["shards"][index]
        shard = self.path / record["file"]
        if not shard.is_file():
            raise CacheError(f"activation shard {shard} is missing (listed in {self.path / 'manifest.json'}); "
                             f"{_rebuild_hint(self.path)}")
        if self.verify:
            digest = sha256_file(shard)
            if digest != record["sha256"]:
                raise CacheError(f"activation shard {shard} is corrupt: sha256 {digest[:12]}… does not match "
                                 f"the manifest's {record['sha256'][:12]}…; {_rebuild_hint(self.path)}")
        try:
            rows = load_file(shard)[TENSOR_KEY]
        except Exception as error:  # a truncated file that somehow kept its hash is still unreadable
            raise CacheError(f"activation shard {shard} cannot be read ({error}); {_rebuild_hint(self.path)}") from None
        if tuple(rows.shape) != (record["rows"], self.d_model):
            raise CacheError(f"activation shard {shard} has shape {tuple(rows.shape)}, the manifest says "
                             f"({record['rows']}, {self.d_model}); {_rebuild_hint(self.path)}")
        rows = rows.to(torch.float32)
        check_finite(rows, f"activation shard {shard}", _rebuild_hint(self.path))
        return rows

    @property
    def fingerprint(self) -> str:
        """Identifies the data: the manifest names every shard's sha256, so a rebuilt cache differs."""
        return sha256_file(self.path / "manifest.json")

    def in_order(self) -> Iterator[torch.Tensor]:
        """The split's shards in stored order: row i overall is token i of the split's token stream."""
        return (self.load_shard(i) for i in range(len(self._split["shards"])))

    def mean(self) -> torch.Tensor:
        """Per-dimension mean of the split, float32 [d_model], one shard at a time (a paper-scale
        held-out split does not fit in memory at once)."""
        total = torch.zeros(self.d_model, dtype=torch.float64)
        for shard in self.in_order():
            total += shard.double().sum(0)
        return (total / max(self.n_tokens, 1)).float()

    def tensor(self) -> torch.Tensor:
        """The whole split in stored order, float32 [n_tokens, d_model] (for held-out measurement)."""
        if not self._split["shards"]:
            return torch.empty(0, self.d_model)
        return torch.cat(list(self.in_order()))

    def batches(self, batch_size: int, seed: int, epoch: int = 0, drop_last: bool = False) -> Iterator[torch.Tensor]:
        """Float32 [batch_size, d_model] batches in a seeded shuffled order (shard order and rows)."""
        return shuffled_batches(len(self._split["shards"]), self.load_shard, batch_size, seed, epoch, drop_last)


def shuffled_batches(n_shards: int, load_shard: Callable[[int], torch.Tensor], batch_size: int, seed: int,
                     epoch: int = 0, drop_last: bool = False) -> Iterator[torch.Tensor]:
    """Batches of the rows of `n_shards` shards, shard order and rows within each shard permuted by
    (seed, epoch) alone: sources whose shards hold the same tokens (one layer's cache, or several
    layers' side by side) yield the same tokens in the same order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    rng = np.random.default_rng(stable_seed("activation-batches", seed, epoch))
    pending: list[torch.Tensor] = []
    pending_rows = 0
    for index in rng.permutation(n_shards):
        rows = load_shard(int(index))
        rows = rows[torch.from_numpy(rng.permutation(rows.shape[0]))]
        pending.append(rows)
        pending_rows += rows.shape[0]
        if pending_rows < batch_size:
            continue
        stream = torch.cat(pending)
        full = (stream.shape[0] // batch_size) * batch_size
        yield from stream[:full].split(batch_size)
        pending, pending_rows = [stream[full:]], stream.shape[0] - full
    if pending_rows and not drop_last:
        yield torch.cat(pending)


@dataclass
class ShardWriter:
    """Accumulate rows of one split and write them as fixed-size safetensors shards."""

    directory: Path
    split: str
    dtype: torch.dtype
    shard_tokens: int
    records: list[dict[str, Any]] = field(default_factory=list)
    _buffer: list[torch.Tensor] = field(default_factory=list)
    _buffered: int = 0

    def append(self, rows: torch.Tensor) -> None:
        rows = rows.detach().to("cpu", self.dtype)
        check_finite(rows, f"{self.split} activations stored as {self.dtype}",
                     "the model produced NaN/Inf, or values beyond the storage dtype's range (float16 "
                     "overflows above 65504: set cache.dtype to bfloat16 or float32)")
        self._buffer.append(rows)
        self._buffered += rows.shape[0]
        while self._buffered >= self.shard_tokens:
            self._flush(self.shard_tokens)

    def close(self) -> list[dict[str, Any]]:
        if self._buffered:
            self._flush(self._buffered)
        return self.records

    def _flush(self, rows: int) -> None:
        stream = torch.cat(self._buffer)
        name = f"{self.split}_{len(self.records):05d}.safetensors"
        save_file({TENSOR_KEY: stream[:rows].contiguous()}, str(self.directory / name))
        self.records.append({"file": name, "rows": rows, "sha256": sha256_file(self.directory / name)})
        self._buffer = [stream[rows:]] if stream.shape[0] > rows else []
        self._buffered = stream.shape[0] - rows


@dataclass(frozen=True)
class CacheSpec:
    """What to cache: which model revision, which layers, in which dtype and shard size."""

    model: str
    revision: str
    source: str
    layers: Sequence[int]
    dtype: str = "float16"
    shard_tokens: int = 65536
    batch_size: int = 16
    loader: str = ""

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"cache dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        if not self.layers:
            raise ValueError("no layers to cache: give at least one layer index")


def resid_post_batches(bridge: Any, tokens: torch.Tensor, layers: Sequence[int], batch_size: int,
                       device: str) -> Iterator[dict[int, torch.Tensor]]:
    """For each batch of sequences, one forward pass (stopped after the last requested layer)
    returning {layer: [batch·ctx, d_model]} for every requested layer's resid_post."""
    names = [hook_name(layer) for layer in layers]
    stop = max(layers) + 1
    n_layers = int(bridge.cfg.n_layers)
    with torch.inference_mode():
        for start in range(0, tokens.shape[0], batch_size):
            ids = tokens[start:start + batch_size].to(device)
            _, cache = bridge.run_with_cache(ids, names_filter=names,
                                             stop_at_layer=stop if stop < n_layers else None)
            yield {layer: cache[hook_name(layer)].reshape(-1, cache[hook_name(layer)].shape[-1])
                   for layer in layers}


def build_caches(bridge: Any, streams: Mapping[str, torch.Tensor], spec: CacheSpec, out_dirs: Mapping[int, PathLike],
                 token_stream_sha256: str, device: str, provenance: Mapping[str, Any] | None = None) -> dict[int, dict]:
    """Run `streams` (split -> int64 [n_seq, ctx]) through the bridge once and write one cache
    directory per layer; returns each layer's manifest. Directories appear only when complete."""
    if set(streams) != set(SPLITS):
        raise ValueError(f"streams must have exactly the splits {SPLITS}, got {sorted(streams)}")
    n_layers = int(bridge.cfg.n_layers)
    bad = [layer for layer in spec.layers if not 0 <= layer < n_layers]
    if bad:
        raise ValueError(f"layers {bad} do not exist in {spec.model} ({n_layers} layers: 0..{n_layers - 1})")
    progress = Progress(f"caching {spec.model}/{spec.revision} layers {list(spec.layers)} on {device}",
                        sum(int(streams[split].numel()) for split in SPLITS), "tokens")
    with contextlib.ExitStack() as stack:
        staging = {layer: stack.enter_context(atomic_directory(out_dirs[layer])) for layer in spec.layers}
        records: dict[int, dict[str, Any]] = {layer: {} for layer in spec.layers}
        for split in SPLITS:
            writers = {layer: ShardWriter(staging[layer], split, DTYPES[spec.dtype], spec.shard_tokens)
                       for layer in spec.layers}
            batches = resid_post_batches(bridge, streams[split], spec.layers, spec.batch_size, device)
            for acts in progress.track(batches, size=lambda acts: next(iter(acts.values())).shape[0]):
                for layer, rows in acts.items():
                    writers[layer].append(rows)
            for layer, writer in writers.items():
                shards = writer.close()
                records[layer][split] = {"n_tokens": sum(s["rows"] for s in shards), "shards": shards}
        manifests = {}
        for layer in spec.layers:
            manifests[layer] = {
                "format_version": FORMAT_VERSION, "model": spec.model, "revision": spec.revision,
                "source": spec.source, "loader": spec.loader, "hook": hook_name(layer), "layer": layer,
                "d_model": int(bridge.cfg.d_model), "dtype": spec.dtype,
                "context_length": int(streams["train"].shape[1]),
                "token_stream_sha256": token_stream_sha256, "splits": records[layer],
            }
            write_json(staging[layer] / "manifest.json", manifests[layer])
            if provenance is not None:
                write_json(staging[layer] / "provenance.json", provenance)
    progress.finish(f"{sum(len(records[layer][split]['shards']) for layer in spec.layers for split in SPLITS)} "
                    f"shards in {len(spec.layers)} layer directories")
    return manifests
