"""Max-activating contexts: what a latent responds to, read off the held-out text.

For chosen latents of one SAE, the k held-out tokens with the highest activation and the text
around each, as Neuronpedia's feature export lays them out (per example: `tokens`, `values`,
`maxValue`, `maxValueTokenIndex`), and a static HTML page that shows them with each token shaded by
its activation. The latents are the top ones by E[z²] (the importance the KD floors rank by) plus a
seeded random sample of the other alive latents, so the page is not only the easy cases.

The held-out cache stores the held-out token stream's rows in order (row i is token i of the
flattened [sequences, context] stream), so a row index is a (sequence, position) in that stream and
no LM forward is needed: one pass finds each latent's top rows, a second reads the activations of
every row the context windows show.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence

import torch

from interplab.io import stable_seed
from interplab.kd import Autoencoder


@dataclass(frozen=True)
class ContextSpec:
    top_latents: int = 16  # latents with the largest E[z²]
    random_latents: int = 8  # and a seeded sample of the other alive latents
    examples: int = 10  # highest-activating tokens per latent
    window: int = 8  # tokens of context on each side
    seed: int = 0


@dataclass
class LatentScan:
    """One pass over the held-out rows: per latent E[z²], firing count, and the top activations."""

    mean_sq: torch.Tensor  # [d_sae]
    fires: torch.Tensor  # [d_sae] tokens with z > 0
    n_tokens: int
    top_values: torch.Tensor  # [d_sae, k] descending
    top_rows: torch.Tensor  # [d_sae, k] held-out row of each value


@torch.no_grad()
def scan(sae: Autoencoder, batches: Iterable[torch.Tensor], k: int) -> LatentScan:
    """Stream the rows once, keeping each latent's k largest activations (ties: the earlier row)."""
    sum_sq = fires = top_values = top_rows = None
    seen = 0
    for x in batches:
        z = sae.encode(x.float())
        rows = torch.arange(seen, seen + z.shape[0]).expand(z.shape[1], -1)
        if sum_sq is None:
            sum_sq, fires = torch.zeros(z.shape[1], dtype=torch.float64), torch.zeros(z.shape[1], dtype=torch.long)
            top_values, top_rows = torch.empty(z.shape[1], 0), torch.empty(z.shape[1], 0, dtype=torch.long)
        sum_sq += (z.double() ** 2).sum(0)
        fires += (z > 0).sum(0)
        values = torch.cat([top_values, z.T], dim=1)
        candidates = torch.cat([top_rows, rows], dim=1)
        keep = torch.topk(values, min(k, values.shape[1]), dim=1, sorted=True)
        top_values, top_rows = keep.values, candidates.gather(1, keep.indices)
        seen += z.shape[0]
    if sum_sq is None:
        raise ValueError("no held-out rows to scan")
    return LatentScan(sum_sq / seen, fires, seen, top_values, top_rows)


def choose_latents(result: LatentScan, spec: ContextSpec) -> list[tuple[int, str]]:
    """(latent, why) pairs: the top ones by E[z²], then a seeded sample of the other alive ones."""
    alive = torch.nonzero(result.fires > 0).flatten()
    order = alive[torch.argsort(result.mean_sq[alive], descending=True, stable=True)]
    top = order[:spec.top_latents].tolist()
    rest = order[spec.top_latents:]
    generator = torch.Generator().manual_seed(stable_seed("contexts", spec.seed))
    sample = rest[torch.randperm(len(rest), generator=generator)[:spec.random_latents]].tolist()
    return [(i, "top E[z²]") for i in top] + [(i, "random alive") for i in sorted(sample)]


def peaks(result: LatentScan, index: int) -> list[tuple[float, int]]:
    """(value, row) of a latent's top activations that fired, strongest first."""
    return [(v, r) for v, r in zip(result.top_values[index].tolist(), result.top_rows[index].tolist()) if v > 0]


def context_rows(result: LatentScan, latents: Sequence[tuple[int, str]], context: int, window: int) -> set[int]:
    """Every held-out row some chosen latent's context window shows: what `activations_at` must read."""
    rows = [row for index, _ in latents for _, row in peaks(result, index)]
    return {row for span in windows(rows, context, window) for row in span}


def windows(rows: Sequence[int], context: int, window: int) -> list[range]:
    """The held-out rows around each row, clipped to its own sequence."""
    return [range(max(r - window, (r // context) * context), min(r + window + 1, (r // context + 1) * context))
            for r in rows]


@torch.no_grad()
def activations_at(sae: Autoencoder, batches: Iterable[torch.Tensor], rows: set[int], latents: Sequence[int]) -> dict:
    """A second pass over the held-out rows: the chosen latents' activations at every row a context
    window shows ({row: [len(latents)]}), so every shaded token is exact, not only the peak."""
    wanted = torch.tensor(sorted(rows), dtype=torch.long)
    columns = torch.tensor(list(latents), dtype=torch.long)
    found, seen = {}, 0
    for x in batches:
        inside = wanted[(wanted >= seen) & (wanted < seen + x.shape[0])]
        if len(inside):
            z = sae.encode(x[inside - seen].float())[:, columns]
            found.update(zip(inside.tolist(), z))
        seen += x.shape[0]
    return found


def feature_records(result: LatentScan, latents: Sequence[tuple[int, str]], tokens: torch.Tensor,
                    decode: Callable[[int], str], window: int, at_rows: Mapping[int, torch.Tensor]) -> list[dict]:
    """Neuronpedia-style records: per latent its statistics and, per top activation, the context
    window's decoded tokens with the latent's activation at each (`at_rows` from `activations_at`)."""
    flat = tokens.reshape(-1)
    records = []
    for column, (index, why) in enumerate(latents):
        examples = []
        top = peaks(result, index)
        for (value, row), span in zip(top, windows([r for _, r in top], tokens.shape[1], window)):
            examples.append({"tokens": [decode(i) for i in flat[span.start:span.stop].tolist()],
                             "values": [float(at_rows[r][column]) for r in span], "maxValue": value,
                             "maxValueTokenIndex": row - span.start, "row": row})
        records.append({"index": index, "selected_as": why, "mean_sq": float(result.mean_sq[index]),
                        "frac_nonzero": float(result.fires[index]) / result.n_tokens,
                        "maxActValue": examples[0]["maxValue"] if examples else 0.0, "activations": examples})
    return records


def browser_html(title: str, layers: Mapping[str, Sequence[dict]]) -> str:
    """A static page: per layer, per latent, its top contexts with the firing token shaded."""
    parts = [f"<!doctype html><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}"
             ".ex{font-family:monospace;white-space:pre-wrap;margin:2px 0;border-bottom:1px solid #eee}"
             ".tok{border-radius:2px}.meta{color:#555;font-size:90%}</style>",
             f"<h1>{html.escape(title)}</h1>",
             "<p>Each latent's highest-activating held-out tokens (shaded by activation relative to the "
             "latent's maximum) with their context. Latents: the top ones by E[z²], then a random sample "
             "of the other alive ones.</p>"]
    for layer, records in layers.items():
        parts.append(f"<h2>{html.escape(layer)}</h2>")
        for rec in records:
            parts.append(f"<h3>latent {rec['index']} <span class='meta'>({html.escape(rec['selected_as'])}; "
                         f"E[z²] {rec['mean_sq']:.4g}, fires on {100 * rec['frac_nonzero']:.3g}% of tokens, "
                         f"max {rec['maxActValue']:.3g})</span></h3>")
            top = rec["maxActValue"] or 1.0
            for ex in rec["activations"]:
                spans = "".join(
                    f"<span class='tok' style='background:rgba(255,120,0,{min(1.0, v / top):.2f})' "
                    f"title='{v:.3g}'>{html.escape(t)}</span>" for t, v in zip(ex["tokens"], ex["values"]))
                parts.append(f"<div class='ex'>{spans}</div>")
    return "\n".join(parts) + "\n"
