"""Assemble the folder users download for one SAE trial, and upload it to the Hugging Face hub.

The folder holds what the project published per trial: `sae_layer{LL}_{SNAPSHOT}.pt` files at the
top, SAELens-loadable folders under `saelens/layer_{LL}/{snapshot}/`, the KD metrics table, and a
model card (README.md) that says what was trained, how, and how to load it. Weight files are copied
(never hard-linked: damage to one copy must not reach the other) and checked against the sha256
their cfg.json recorded, so a corrupt snapshot cannot be published.
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

from interplab.io import atomic_path, verify_sha256
from interplab.sae.export import REBUILD_HINT, WEIGHTS_FILE, recorded_hashes

log = logging.getLogger(__name__)
HIDDEN = [".*", "**/.*"]


@dataclass(frozen=True)
class TrialCard:
    """What the model card states about one trial."""

    trial: str
    base_model: str
    revision: str
    hook: str
    layers: Sequence[int]
    d_in: int
    d_sae: int
    l1_policy: str
    training_tokens: int
    snapshots: Sequence[str]
    metrics: pd.DataFrame = field(repr=False)  # one row per layer (final snapshot): l0, alpha, dstar, mse, dead


def copy_verified(src: str | os.PathLike, dst: str | os.PathLike, sha256: str | None) -> None:
    """Copy `src` to `dst` atomically; with a recorded `sha256`, the source must match it first."""
    if sha256 is not None:
        verify_sha256(src, sha256, REBUILD_HINT)
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def model_card(card: TrialCard, repo_id: str | None) -> str:
    """Markdown model card with YAML front matter (the hub reads `base_model`, `library_name`, `tags`)."""
    rows = card.metrics.sort_values("layer")
    table = ["| layer | L0 | α | d*_S | MSE | dead |", "|---|---|---|---|---|---|"]
    table += [f"| {int(r.layer)} | {r.l0:.1f} | {r.alpha:.4f} | {r.dstar:.1f} | {r.mse:.4g} | {int(r.dead)} |"
              for r in rows.itertuples()]
    repo = repo_id or "<user>/<repo>"
    first_layer, last = int(card.layers[0]), card.snapshots[-1]
    return f"""---
library_name: saelens
base_model: {card.base_model}
tags: [sparse-autoencoder, mechanistic-interpretability, interplab]
---

# Residual-stream SAEs for {card.base_model}: trial {card.trial}

Per-layer ReLU sparse autoencoders on `{card.hook}` of `{card.base_model}` (revision `{card.revision}`),
trained with interplab, L1 policy **{card.l1_policy}**.

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

- `sae_layer{{LL}}_{{SNAPSHOT}}.pt`: a dict of `W_enc [d_in, d_sae]`, `b_enc`, `W_dec [d_sae, d_in]`,
  `b_dec` and `cfg`; x̂ = ReLU((x − b_dec)·W_enc + b_enc)·W_dec + b_dec.
- `saelens/layer_{{LL}}/{{SNAPSHOT}}/`: `cfg.json` + `sae_weights.safetensors` in SAELens's layout.
- `metrics.csv`: every KD metric for every layer and snapshot.

## Loading

```python
import torch
from huggingface_hub import hf_hub_download

path = hf_hub_download("{repo}", "sae_layer{first_layer:02d}_{last}.pt")
sae = torch.load(path, weights_only=True)

# or with SAELens
from huggingface_hub import snapshot_download
from sae_lens import SAE
folder = snapshot_download("{repo}", allow_patterns="saelens/layer_{first_layer:02d}/{last}/*")
sae = SAE.load_from_disk(f"{{folder}}/saelens/layer_{first_layer:02d}/{last}")
```
"""


def assemble(card: TrialCard, snapshot_dirs: Mapping[tuple[int, str], Path], pt_files: Mapping[tuple[int, str], Path],
             metrics_table: pd.DataFrame, out_dir: str | os.PathLike, repo_id: str | None = None) -> Path:
    """Lay out the trial's folder in `out_dir`; keys of the mappings are (layer, snapshot)."""
    out = Path(out_dir)
    for key, folder in snapshot_dirs.items():
        layer, snapshot = key
        hashes = recorded_hashes(folder)
        copy_verified(pt_files[key], out / Path(pt_files[key]).name, hashes.get("pt_sha256"))
        for item in Path(folder).iterdir():
            expected = hashes.get("weights_sha256") if item.name == WEIGHTS_FILE else None
            copy_verified(item, out / "saelens" / f"layer_{layer:02d}" / snapshot / item.name, expected)
    with atomic_path(out / "metrics.csv") as tmp:
        metrics_table.to_csv(tmp, index=False)
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
