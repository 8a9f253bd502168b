"""`load_bridge(spec)`: a TransformerLens `TransformerBridge` for a local HF directory or a hub
model + revision, through one code path, so the offline default exercises the same loading code a
Pythia-410M run uses.

Activations are raw HF numerics (no LayerNorm folding, no weight centring): what the cache
stores is exactly the model's residual stream, and every cache manifest records `LOADER`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interplab.activations import DTYPES
from interplab.io import read_json, verify_sha256

SOURCES = ("local", "hf")
PROVENANCE_FILE = "interplab_provenance.json"  # written by interplab's teacher checkpoints
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_HASH_KEY = "weights_sha256"
LOADER = "transformer_lens TransformerBridge.boot_transformers, raw HF numerics (no fold_ln, no centring)"


@dataclass(frozen=True)
class BridgeSpec:
    """local: `name` is an HF-format directory (revision ignored). hf: `name` is a hub id, e.g.
    EleutherAI/pythia-410m, and `revision` a branch such as step143000 (None: main)."""

    source: str
    name: str
    revision: str | None = None
    device: str = "cpu"
    dtype: str = "float32"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"bridge source must be one of {SOURCES}, got {self.source!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"model dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")

    @classmethod
    def of_revision(cls, source: str, name: str, revision: str, checkpoint: str | None, device: str,
                    dtype: str) -> "BridgeSpec":
        """One model revision: the local teacher's checkpoint directory, or hub model `name` at `revision`."""
        local = source == "local"
        return cls(source=source, name=checkpoint if local else name, revision=None if local else revision,
                   device=device, dtype=dtype)


def checkpoint_inputs(checkpoint: str | None) -> dict[str, str]:
    """The weights file a job read, for its provenance record (none for a hub model)."""
    return {"weights": f"{checkpoint}/{WEIGHTS_FILE}"} if checkpoint else {}


def verify_checkpoint(path: str | Path) -> None:
    """Check an interplab checkpoint's weights (teacher or student) against the sha256 recorded when
    it was saved (a directory from elsewhere, without that record, is loaded as it is)."""
    path = Path(path)
    record = path / PROVENANCE_FILE
    if record.is_file() and WEIGHTS_HASH_KEY in (saved := read_json(record)):
        verify_sha256(path / WEIGHTS_FILE, saved[WEIGHTS_HASH_KEY],
                      f"retrain the teacher (snakemake --forcerun teacher_train {path}) or fetch it with dvc pull")


def load_bridge(spec: BridgeSpec) -> Any:
    """Boot the model in eval mode on `spec.device`; a missing local directory fails with its path."""
    from transformer_lens.model_bridge import TransformerBridge

    if spec.source == "local":
        path = Path(spec.name)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no HF model directory at {path} (config.json missing): train the local "
                                    f"teacher first (snakemake {path}) or set model.source: hf")
        verify_checkpoint(path)
        bridge = TransformerBridge.boot_transformers(str(path), device=spec.device, dtype=DTYPES[spec.dtype])
    else:
        bridge = TransformerBridge.boot_transformers(spec.name, device=spec.device, dtype=DTYPES[spec.dtype],
                                                     revision=spec.revision)
    bridge.eval()
    return bridge
