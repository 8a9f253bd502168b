"""Assemble the folder users download for one SAE trial, and upload it to the Hugging Face hub.

The folder holds what the project published per trial: `sae_layer{LL}_{SNAPSHOT}.pt` files at the
top, SAELens-loadable folders under `saelens/layer_{LL}/{snapshot}/` (cfg.json, weights and the kd
stage's `sparsity.safetensors`), the KD metrics table, `pretrained_saes.yaml` (one entry per
snapshot in the format of SAELens's own registry, ready to add to it) and a model card (README.md)
built with huggingface_hub's ModelCard: front matter with license, base model and datasets (only
when they are hub ids), and every SAE's final-snapshot metrics. Weight files are copied (never
hard-linked: damage to one copy must not reach the other) and checked against the sha256 their
cfg.json recorded, so a corrupt snapshot cannot be published.
Uploading needs a repo id and a token; without them `publish` stops after assembling and says so.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
import yaml

from interplab.io import atomic_path, verify_sha256
from interplab.sae.export import REBUILD_HINT, SPARSITY_FILE, WEIGHTS_FILE, recorded_hashes

log = logging.getLogger(__name__)
HIDDEN = [".*", "**/.*"]
INDEX_FILE = "pretrained_saes.yaml"
LICENSE = "mit"  # the project's license (pyproject.toml), which the trained weights are released under
PLACEHOLDER_REPO = "<user>/<repo>"


@dataclass(frozen=True)
class TrialCard:
    """What the model card states about one trial. `model_name` is SAELens's metadata.model_name
    (a hub id or a local label); `base_model` and `dataset` are hub ids, or None when the model is
    a local teacher or the corpus is not on the hub (the hub links them, so they must be real)."""

    trial: str
    model_name: str
    base_model: str | None
    dataset: str | None
    revision: str
    hook: str
    layers: Sequence[int]
    d_in: int
    d_sae: int
    l1_policy: str
    training_tokens: int
    snapshots: Sequence[str]
    metrics: pd.DataFrame = field(repr=False)  # one row per layer (final snapshot): l0, alpha, dstar, mse, fvu, dead


@dataclass(frozen=True)
class SnapshotFiles:
    """One snapshot's inputs: its SAELens folder, its .pt file, and the kd stage's sparsity file."""

    folder: Path
    pt: Path
    sparsity: Path


def copy_verified(src: str | os.PathLike, dst: str | os.PathLike, sha256: str | None) -> None:
    """Copy `src` to `dst` atomically; with a recorded `sha256`, the source must match it first."""
    if sha256 is not None:
        verify_sha256(src, sha256, REBUILD_HINT)
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def saelens_folder(layer: int, snapshot: str) -> str:
    """Where a snapshot's SAELens folder sits in the repo: the `folder` of `SAE.from_pretrained(repo, folder)`."""
    return f"saelens/layer_{layer:02d}/{snapshot}"


def sae_id(card: TrialCard, layer: int, snapshot: str) -> str:
    """An SAE's id in the index and the card's front matter: the hook it reads, then the snapshot."""
    return f"{card.hook.format(L=layer)}/{snapshot}"


def quality(row: Any) -> dict[str, float]:
    """The numbers SAELens's registry keeps per SAE (l0, variance_explained), from one metrics row."""
    return {"l0": round(float(row.l0), 4), "variance_explained": round(1.0 - float(row.fvu), 6)}


def saelens_index(card: TrialCard, metrics_table: pd.DataFrame, repo_id: str | None) -> dict:
    """`pretrained_saes.yaml` content: one release listing every snapshot of every layer, with its
    folder and held-out L0 and variance explained at the card's revision, as SAELens's registry does."""
    rows = metrics_table[metrics_table["ckpt"] == card.revision] if "ckpt" in metrics_table else metrics_table.iloc[:0]
    measured = {(int(r.layer), str(r.snapshot)): quality(r) for r in rows.itertuples()}
    release: dict[str, Any] = {"repo_id": repo_id or PLACEHOLDER_REPO, "model": card.model_name, "conversion_func": None}
    if card.base_model:
        release["links"] = {"model": f"https://huggingface.co/{card.base_model}"}
    release["saes"] = [{"id": sae_id(card, layer, snapshot), "path": saelens_folder(layer, snapshot),
                        **measured.get((layer, snapshot), {})}
                       for layer in card.layers for snapshot in card.snapshots]
    return {f"{card.model_name.split('/')[-1]}-interplab-{card.trial}": release}


def card_data(card: TrialCard) -> Any:
    """The card's front matter: what the hub indexes (license, base model, datasets, tags) and every
    layer's final-snapshot metrics on held-out tokens under `sae_metrics`, keyed by SAE id."""
    from huggingface_hub import ModelCardData

    final = card.snapshots[-1]
    metrics = {sae_id(card, int(r.layer), final): {**quality(r), "alpha": round(float(r.alpha), 6),
                                                    "dstar": round(float(r.dstar), 4), "mse": float(r.mse),
                                                    "dead": int(r.dead)}
               for r in card.metrics.sort_values("layer").itertuples()}
    return ModelCardData(license=LICENSE, library_name="saelens", base_model=card.base_model,
                         datasets=[card.dataset] if card.dataset else None,
                         tags=["sparse-autoencoder", "saelens", "mechanistic-interpretability", "interplab"],
                         sae_metrics=metrics)


def model_card(card: TrialCard, repo_id: str | None) -> str:
    """The model card (README.md): ModelCardData front matter, then what was trained and how to load it."""
    from huggingface_hub import ModelCard

    rows = card.metrics.sort_values("layer")
    table = ["| layer | L0 | variance explained | α | d*_S | MSE | dead |", "|---|---|---|---|---|---|---|"]
    table += [f"| {int(r.layer)} | {r.l0:.1f} | {1 - r.fvu:.4f} | {r.alpha:.4f} | {r.dstar:.1f} | {r.mse:.4g} | {int(r.dead)} |"
              for r in rows.itertuples()]
    repo = repo_id or PLACEHOLDER_REPO
    first_layer, last = int(card.layers[0]), card.snapshots[-1]
    folder = saelens_folder(first_layer, last)
    local = "" if card.base_model else (
        f"\n`{card.model_name}` was trained locally with interplab and is not on the hub, so SAELens cannot load it "
        f"by name: run it with TransformerLens's `TransformerBridge` and attach the SAE at `{card.hook}`.\n")
    body = f"""# Residual-stream SAEs for {card.model_name}: trial {card.trial}

Per-layer ReLU sparse autoencoders on `{card.hook}` of `{card.model_name}` (revision `{card.revision}`),
trained with interplab, L1 policy **{card.l1_policy}**.
{local}
| | |
|---|---|
| layers | {", ".join(str(int(x)) for x in card.layers)} |
| d_in → dictionary size | {card.d_in} → {card.d_sae} |
| training tokens | {card.training_tokens:,} |
| token snapshots | {", ".join(card.snapshots)} |

## KD metrics per layer (final snapshot, held-out tokens)

{chr(10).join(table)}

α = 1 − L0/F_alive; d*_S = F_alive / g(α) with g(α) = 1/((1−α)·ln(1/(1−α))) (arXiv 2604.04037).

## Files

- `saelens/layer_{{LL}}/{{SNAPSHOT}}/`: SAELens's layout: `cfg.json` (hook, model, context size and
  training facts under `metadata`), `sae_weights.safetensors`, and `sparsity.safetensors`
  (log10 of each latent's firing frequency on held-out tokens).
- `{INDEX_FILE}`: every SAE of this repo as an entry of SAELens's pretrained-SAE registry
  (id, folder, held-out L0 and variance explained).
- `sae_layer{{LL}}_{{SNAPSHOT}}.pt`: a dict of `W_enc [d_in, d_sae]`, `b_enc`, `W_dec [d_sae, d_in]`,
  `b_dec` and `cfg`; x̂ = ReLU((x − b_dec)·W_enc + b_enc)·W_dec + b_dec.
- `metrics.csv`: every KD metric for every layer and snapshot.

## Loading

```python
from sae_lens import SAE

sae = SAE.from_pretrained("{repo}", "{folder}")
```

or without SAELens:

```python
import torch
from huggingface_hub import hf_hub_download

sae = torch.load(hf_hub_download("{repo}", "sae_layer{first_layer:02d}_{last}.pt"), weights_only=True)
```
"""
    return str(ModelCard(f"---\n{card_data(card).to_yaml()}\n---\n\n{body}"))


def assemble(card: TrialCard, snapshots: Mapping[tuple[int, str], SnapshotFiles], metrics_table: pd.DataFrame,
             out_dir: str | os.PathLike, repo_id: str | None = None) -> Path:
    """Lay out the trial's folder in `out_dir`; `snapshots` is keyed by (layer, snapshot)."""
    out = Path(out_dir)
    for (layer, snapshot), files in snapshots.items():
        hashes = recorded_hashes(files.folder)
        copy_verified(files.pt, out / files.pt.name, hashes.get("pt_sha256"))
        target = out / saelens_folder(layer, snapshot)
        for item in files.folder.iterdir():
            expected = hashes.get("weights_sha256") if item.name == WEIGHTS_FILE else None
            copy_verified(item, target / item.name, expected)
        copy_verified(files.sparsity, target / SPARSITY_FILE, None)
    with atomic_path(out / "metrics.csv") as tmp:
        metrics_table.to_csv(tmp, index=False)
    with atomic_path(out / INDEX_FILE) as tmp:
        tmp.write_text(yaml.safe_dump(saelens_index(card, metrics_table, repo_id), sort_keys=False, allow_unicode=True))
    with atomic_path(out / "README.md") as tmp:
        tmp.write_text(model_card(card, repo_id))
    return out


def upload(folder: str | os.PathLike, repo_id: str | None, token: str | None, api: Any = None) -> dict:
    """Upload the folder when both a repo id and a token are given; otherwise say why not and stop."""
    if not repo_id or not token:
        missing = " and ".join(name for name, value in (("a repo id", repo_id), ("a token", token)) if not value)
        message = (f"assembled {folder} but did not upload: {missing} missing. Set publish.repo_ids.<trial> in the "
                   "config and export the token variable named by publish.token_env (default HF_TOKEN).")
        log.info(message)
        return {"uploaded": False, "folder": str(folder), "reason": message}
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    api.create_repo(repo_id, exist_ok=True, repo_type="model")
    commit = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                               commit_message="interplab: publish SAE trial",
                               ignore_patterns=HIDDEN)  # e.g. Snakemake's .snakemake_timestamp
    url = getattr(commit, "commit_url", str(commit))
    log.info("uploaded %s to %s (%s)", folder, repo_id, url)
    return {"uploaded": True, "folder": str(folder), "repo_id": repo_id, "commit": url}
