"""Snapshot export in two layouts, and `load_sae`, the one call that turns either back into a module.

- `{snapshot}/cfg.json` + `sae_weights.safetensors`: SAELens's on-disk layout (architecture
  `standard`, keys W_enc, b_enc, W_dec, b_dec with b_dec subtracted from the input), so
  `sae_lens.SAE.load_from_disk(dir)` reads it; provenance and training facts sit under `metadata`.
- Both hold the folded weights (interplab.sae.model.folded): they take raw activations
  (`normalize_activations: none`), decoder rows have unit norm, and the input scale c the SAE
  trained with is recorded as `metadata.input_scale`.
- `sae_layer{LL}_{SNAPSHOT}.pt`: the published naming; a flat dict of the same four tensors plus
  `cfg`, loadable with `torch.load(path, weights_only=True)`.

cfg.json's metadata records the sha256 of both weight files (`weights_sha256`, `pt_sha256`);
`load_sae` and publishing verify them, so a flipped bit or a truncated file stops the reader with
the file's name instead of changing every number downstream.

SAELens reads `metadata.sae_lens_version`: without it (or below 6.0) it takes cfg.json for a
pre-6.0 config and keeps only top-level keys as metadata, so the nested `hook_name` and
`model_name` came back None. The export writes the version its layout was checked against
(`SAELENS_VERSION`, loaded by tests/e2e/test_saelens.py) and the keys SAELens uses to attach an SAE
to a model (`saelens_usage`). `sparsity.safetensors` (log10 firing frequency per latent) is
measured by the kd stage on held-out tokens and written with `write_sparsity`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
from safetensors.torch import save_file

from interplab.io import PathLike, atomic_path, load_tensors, read_json, sha256_file, write_json
from interplab.sae.checkpoint import WorkDir
from interplab.sae.model import SparseAutoencoder, folded
from interplab.sae.trainer import Snapshot
from interplab.teacher.plan import MODEL_SOURCES

CFG_FILE = "cfg.json"
WEIGHTS_FILE = "sae_weights.safetensors"
SPARSITY_FILE = "sparsity.safetensors"
# The SAELens release whose loader this layout is tested against; >= 6.0 keeps the nested metadata.
SAELENS_VERSION = "6.54.12"
# SAELens's own floor under log10(density) (sae_lens.training.sae_trainer), so dead latents read -10.
LOG_DENSITY_EPS = 1e-10
# Our parameter name → SAELens's (b_pre is SAELens's b_dec with apply_b_dec_to_input).
SAELENS_NAMES = {"W_enc": "W_enc", "b_enc": "b_enc", "W_dec": "W_dec", "b_pre": "b_dec"}


def pt_name(layer: int, snapshot: str) -> str:
    return f"sae_layer{layer:02d}_{snapshot}.pt"


def saelens_usage(model: Mapping[str, Any], ckpt: str) -> dict[str, Any]:
    """The metadata SAELens uses to run the model an SAE belongs to (all but `hook_name`, per layer),
    from the config's `model` section and the checkpoint label.

    Only a hub model (source hf) can be loaded by name: SAELens calls TransformerLens's
    `HookedTransformer.from_pretrained_no_processing(model_name, **model_from_pretrained_kwargs)`,
    which, like our cache, keeps raw HF numerics; a Pythia revision `step{N}` is its
    `checkpoint_value`. A local teacher or the synthetic source keeps its path label as `model_name`
    (nothing on the hub answers to it). Training rows are cut from one EOS-joined token stream,
    so no BOS is prepended; `dataset_path` is a hub dataset id, or None for the stdlib corpus.
    """
    language_model = model["source"] in MODEL_SOURCES
    step = re.fullmatch(r"step(\d+)", ckpt)
    corpus = model["corpus"]
    return {
        "model_name": model["name"] if model["source"] == "hf" else model["name"].split("/")[-1],
        "model_class_name": "HookedTransformer",
        "model_from_pretrained_kwargs": {"checkpoint_value": int(step[1])} if model["source"] == "hf" and step else {},
        "hook_head_index": None,
        "prepend_bos": False,
        "context_size": model["context_length"] if language_model else None,
        "dataset_path": corpus["dataset"] if language_model and corpus["source"] == "hf" else None,
    }


def saelens_cfg(d_in: int, d_sae: int, metadata: Mapping[str, Any]) -> dict:
    """A SAELens v6 `standard` SAE config; everything about how it was trained goes in `metadata`,
    stamped with `SAELENS_VERSION` and `sae_lens_training_version` None (SAELens did not train it)."""
    return {
        "architecture": "standard",
        "d_in": d_in,
        "d_sae": d_sae,
        "dtype": "float32",
        "device": "cpu",
        "apply_b_dec_to_input": True,
        "normalize_activations": "none",
        "reshape_activations": "none",
        "metadata": {**metadata, "sae_lens_version": SAELENS_VERSION, "sae_lens_training_version": None},
    }


def export_snapshot(weights: Mapping[str, torch.Tensor], snapshot_dir: PathLike, pt_path: PathLike,
                    metadata: Mapping[str, Any]) -> None:
    """Write one snapshot in both layouts (each file atomically)."""
    tensors = {SAELENS_NAMES[k]: weights[k].detach().cpu().float().contiguous() for k in SAELENS_NAMES}
    d_sae, d_in = tensors["W_dec"].shape
    cfg = saelens_cfg(d_in, d_sae, metadata)
    snapshot_dir = Path(snapshot_dir)
    with atomic_path(snapshot_dir / WEIGHTS_FILE) as tmp:
        save_file(tensors, str(tmp))
    with atomic_path(pt_path) as tmp:
        torch.save({**tensors, "cfg": json.loads(json.dumps(cfg, default=str))}, tmp)
    cfg["metadata"].update(weights_sha256=sha256_file(snapshot_dir / WEIGHTS_FILE), pt_sha256=sha256_file(pt_path))
    write_json(snapshot_dir / CFG_FILE, cfg)


def write_sparsity(path: PathLike, density: torch.Tensor) -> None:
    """SAELens's `sparsity.safetensors`: tensor `sparsity` [d_sae] = log10(firing frequency + 1e-10),
    the frequency being the fraction of measured tokens on which each latent is > 0."""
    with atomic_path(path) as tmp:
        save_file({"sparsity": torch.log10(density.double() + LOG_DENSITY_EPS).float().contiguous()}, str(tmp))


REBUILD_HINT = ("retrain that SAE (snakemake --forcerun <the snapshot's cfg.json>: its layer group reruns) "
                "or fetch a good copy with dvc pull")


def recorded_hashes(snapshot_dir: PathLike) -> dict[str, str]:
    """The weight-file hashes a snapshot's cfg.json recorded (empty for exports older than the record)."""
    meta = read_json(Path(snapshot_dir) / CFG_FILE).get("metadata", {})
    return {key: meta[key] for key in ("weights_sha256", "pt_sha256") if key in meta}


def load_sae(path: PathLike, device: str = "cpu") -> SparseAutoencoder:
    """A trained SAE from a snapshot directory (cfg.json + sae_weights.safetensors) or a `.pt` file."""
    path = Path(path)
    if path.is_dir():
        if not (path / WEIGHTS_FILE).exists():
            raise FileNotFoundError(f"{path} has no {WEIGHTS_FILE}: pass a snapshot directory "
                                    "results/sae/{trial}/{model}/{ckpt}/L{LL}/{snapshot}/ or a sae_layer*.pt file")
        expected = recorded_hashes(path).get("weights_sha256") if (path / CFG_FILE).exists() else None
        tensors = load_tensors(path / WEIGHTS_FILE, expected, REBUILD_HINT)
    elif path.suffix == ".pt":
        tensors = {k: v for k, v in torch.load(path, map_location="cpu", weights_only=True).items() if k != "cfg"}
    else:
        raise FileNotFoundError(f"cannot load an SAE from {path}: expected a snapshot directory or a .pt file")
    d_sae, d_in = tensors["W_dec"].shape
    sae = SparseAutoencoder(d_in, d_sae)
    sae.load_state_dict({ours: tensors[theirs] for ours, theirs in SAELENS_NAMES.items()})
    return sae.to(device).eval()


def export_run(work_dir: PathLike, snapshots: Sequence[Snapshot], snapshot_dirs: Mapping[str, PathLike],
               pt_paths: Mapping[str, PathLike], metadata: Mapping[str, Any]) -> None:
    """Export every snapshot a training run left in its work directory to both layouts, folded."""
    work = WorkDir(work_dir)
    for snapshot in snapshots:
        meta = {**metadata, "snapshot": snapshot.name, "training_step": snapshot.step,
                "training_tokens": snapshot.tokens, "l1_coefficient": snapshot.l1_coefficient,
                "input_scale": snapshot.input_scale}
        weights = folded(work.load_snapshot(snapshot.name), snapshot.input_scale)
        export_snapshot(weights, snapshot_dirs[snapshot.name], pt_paths[snapshot.name], meta)
