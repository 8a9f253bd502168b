"""Downstream evaluation of SAEs: the LM's next-token loss with a reconstruction spliced in.

The KD metrics (interplab.kd) judge an SAE on the activations alone; researchers also compare
SAEs by what the model loses when it has to run on the reconstruction (SAELens `run_evals`,
SAEBench "core"). Per SAE, on held-out token sequences:

- CE_clean: the model's mean next-token cross-entropy as it is;
- CE_spliced: the same with blocks.{L}.hook_resid_post replaced by the SAE's decode(encode(x));
- CE_zero, CE_mean: with that residual replaced by zeros, or by the mean held-out activation
  (the mean is an input, read from the held-out cache, so no pass computes it twice);
- CE loss recovered = (CE_ablated − CE_spliced) / (CE_ablated − CE_clean), for both ablations.
  1 = the reconstruction loses nothing, 0 = as bad as deleting the layer's residual. SAELens
  (`ce_loss_score` in sae_lens.evals) and SAEBench use the **zero**-ablation version; the mean
  ablation is the other common baseline. Neither is uniformly harsher: on the default teacher
  (one run, 4,096 held-out tokens) zeroing cost more at blocks 0 and 2, the mean at blocks 1 and 3,
  so the two scores differ by the baseline, not only by the SAE;
- KL(clean ‖ spliced): Σ_v p_clean(v) (log p_clean(v) − log p_spliced(v)), averaged over every
  position (every position has a next-token distribution, targets or not).

Cost: one forward per batch serves every SAE of the layer (every snapshot of every trial). The
batch of B sequences is repeated K = 3 + n_saes times along the batch axis and a single hook at
the layer swaps each copy's residual for its variant (copy 0 stays clean), so the layers below
run on identical inputs and the K logit sets come out of one call. (TransformerBridge's
`start_at_layer` still runs the lower blocks, so resuming from the layer would save nothing.)
CE and KL are computed in float64, one variant at a time (the logits of all K copies are the one
K-fold tensor; a Pythia-size vocabulary makes each float64 copy large), so a GPU run needs
splice_batch_size small enough for K × batch × context × vocab float32 logits.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Mapping

import pandas as pd
import torch

from interplab.activations import hook_name
from interplab.kd import Autoencoder

ABLATIONS = ("zero", "mean")
CONVENTION = "zero"  # SAELens's and SAEBench's ce_loss_score ablate the layer to zeros


@dataclass
class SpliceMetrics:
    n_tokens: int  # predicted tokens (sequences × (context − 1))
    ce_clean: float
    ce_spliced: float
    ce_zero_ablation: float
    ce_mean_ablation: float
    ce_recovered_zero: float
    ce_recovered_mean: float
    kl_clean_spliced: float

    def scalars(self) -> dict:
        return asdict(self)


# The columns a metrics table gets (NaN where there is no LM, e.g. the synthetic source).
COLUMNS = tuple(SpliceMetrics.__dataclass_fields__)


def recovered(ce_ablated: float, ce_spliced: float, ce_clean: float) -> float:
    """(CE_ablated − CE_spliced)/(CE_ablated − CE_clean); NaN when the ablation costs nothing."""
    gap = ce_ablated - ce_clean
    return (ce_ablated - ce_spliced) / gap if gap != 0 else math.nan


def empty_metrics() -> dict:
    return {column: math.nan for column in COLUMNS}


class _Sums:
    def __init__(self) -> None:
        self.ce = 0.0
        self.kl = 0.0


@torch.no_grad()
def splice_metrics(bridge: Any, tokens: torch.Tensor, layer: int, saes: Mapping[str, Autoencoder],
                   mean: torch.Tensor, batch_size: int, device: str = "cpu") -> dict[str, SpliceMetrics]:
    """CE clean / spliced / zero- and mean-ablated, CE recovered and KL of every SAE in `saes` at
    blocks.{layer}.hook_resid_post, on `tokens` (int64 [n_seq, ctx]), `batch_size` sequences per
    forward (each forward carries (3 + len(saes)) × batch_size sequences)."""
    if tokens.ndim != 2 or tokens.shape[1] < 2:
        raise ValueError(f"tokens must be [n_sequences, context ≥ 2], got {tuple(tokens.shape)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    names = list(saes)
    variants = ["clean", "zero", "mean", *names]
    sums = {v: _Sums() for v in variants}
    mean = mean.to(device=device, dtype=torch.float32)
    n_pred = n_kl = 0

    for start in range(0, tokens.shape[0], batch_size):
        ids = tokens[start:start + batch_size].to(device)
        b, ctx = ids.shape

        def swap(resid: torch.Tensor, hook: Any) -> torch.Tensor:
            x = resid[:b]
            flat = x.reshape(-1, x.shape[-1]).float()
            parts = [x, torch.zeros_like(x), mean.to(x.dtype).expand_as(x)]
            parts += [saes[n].decode(saes[n].encode(flat)).reshape(x.shape).to(x.dtype) for n in names]
            return torch.cat(parts)

        logits = bridge.run_with_hooks(ids.repeat(len(variants), 1), fwd_hooks=[(hook_name(layer), swap)])
        targets = ids[:, 1:].unsqueeze(-1)
        clean = p_clean = None
        for i, v in enumerate(variants):  # one variant's float64 log-probs at a time: vocab-sized tensors
            logp = torch.log_softmax(logits[i * b:(i + 1) * b].double(), dim=-1)
            sums[v].ce -= float(logp[:, :-1].gather(-1, targets).sum())
            if i == 0:
                clean, p_clean = logp, logp.exp()
            else:
                sums[v].kl += float((p_clean * (clean - logp)).sum())
        del logits
        n_pred += b * (ctx - 1)
        n_kl += b * ctx

    ce = {v: sums[v].ce / n_pred for v in variants}
    return {n: SpliceMetrics(
        n_tokens=n_pred, ce_clean=ce["clean"], ce_spliced=ce[n], ce_zero_ablation=ce["zero"],
        ce_mean_ablation=ce["mean"], ce_recovered_zero=recovered(ce["zero"], ce[n], ce["clean"]),
        ce_recovered_mean=recovered(ce["mean"], ce[n], ce["clean"]), kl_clean_spliced=sums[n].kl / n_kl,
    ) for n in names}


def splice_record(metrics: SpliceMetrics | None, **identity) -> dict:
    """The JSON written per (trial, model, ckpt, layer, snapshot): identity keys plus the metrics."""
    return {**identity, **(metrics.scalars() if metrics is not None else empty_metrics()),
            "ce_recovered_convention": CONVENTION}


def first_sequences(rows: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """The first ceil(n_tokens / ctx) held-out sequences (all of them if the split is shorter)."""
    return rows[: -(-n_tokens // rows.shape[1])]



def with_splice_columns(metrics: pd.DataFrame, records: list[Mapping]) -> pd.DataFrame:
    """A KD metrics table with the splice columns joined on its identity keys (NaN for a row without a
    splice record, e.g. every row of the synthetic source, which has no LM)."""
    keys = ["trial", "model", "ckpt", "layer", "snapshot"]
    if records:
        splice = pd.DataFrame([{k: r[k] for k in (*keys, *COLUMNS)} for r in records])
        splice = splice.rename(columns={"n_tokens": "splice_tokens"})
        metrics = metrics.astype({"layer": int, "snapshot": str}).merge(
            splice.astype({"layer": int, "snapshot": str}), on=keys, how="left", validate="one_to_one")
    else:
        metrics = metrics.assign(splice_tokens=0, **{c: math.nan for c in COLUMNS if c != "n_tokens"})
    return metrics
