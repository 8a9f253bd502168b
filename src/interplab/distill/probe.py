"""Experiment 4: linear probes for binary concepts on the teacher's and every student's hidden
states at the same relative depth, mean-pooled over each snippet's tokens.

Each probe is the project's standardised logistic regression (interventions.probes) on an 80/20
split; its test accuracy comes with a Wilson 95% interval and beside a shuffled-label control (the
same probe fitted on permuted training labels), so "the concept survives" means above the control,
not just above 0.5.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from interplab.interventions.probes import fit_probe, split


@torch.no_grad()
def pooled_states(model, tokenizer, texts: list[str], layer: int, max_tokens: int, batch_size: int,
                  device: str) -> np.ndarray:
    """Mean over each text's tokens of the residual stream after block `layer` ([n_texts, d_model])."""
    model.eval()
    out = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True, truncation=True,
                        max_length=max_tokens).to(device)
        hidden = model(**enc, output_hidden_states=True).hidden_states[layer + 1]
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        out.append(((hidden * mask).sum(1) / mask.sum(1)).float().cpu().numpy())
    return np.concatenate(out)


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a proportion (sensible near 0 and 1, unlike the normal one)."""
    if n == 0:
        return math.nan, math.nan
    p = correct / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)


def probe_concept(features: np.ndarray, labels: np.ndarray, test_fraction: float, seed: int) -> dict:
    """Held-out accuracy with its interval, and the shuffled-label control on the same split."""
    x_tr, x_te, y_tr, y_te = split(features, labels, test_fraction, seed)
    correct = int((fit_probe(x_tr, y_tr, seed).predict(x_te) == y_te).sum())
    shuffled = np.random.default_rng(seed).permutation(y_tr)
    low, high = wilson_interval(correct, len(y_te))
    return {"accuracy": correct / len(y_te), "ci_low": low, "ci_high": high, "n_test": len(y_te),
            "shuffled_accuracy": float(fit_probe(x_tr, shuffled, seed).score(x_te, y_te))}


def probe_models(models: dict[str, tuple[int, object]], tokenizer, datasets: dict[str, tuple[list[str], np.ndarray]],
                 layer: int, max_tokens: int, test_fraction: float, seed: int, batch_size: int,
                 device: str) -> pd.DataFrame:
    """One row per (model, concept); `models` maps a name to (hidden width, HF causal LM)."""
    rows = []
    for name, (width, model) in models.items():
        model.to(device)
        for concept, (texts, labels) in datasets.items():
            features = pooled_states(model, tokenizer, texts, layer, max_tokens, batch_size, device)
            rows.append({"model": name, "width": width, "concept": concept, "layer": layer,
                         **probe_concept(features, labels, test_fraction, seed)})
        model.to("cpu")
    return pd.DataFrame(rows)
