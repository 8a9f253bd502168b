"""Max-activating contexts: the streamed top-k equals a brute-force sort, windows stay inside their
sequence, every shaded value is the latent's real activation there, and the page escapes text."""
import pytest
import torch

from interplab.sae.contexts import (ContextSpec, activations_at, browser_html, choose_latents, feature_records, scan,
                                    windows)
from interplab.sae.model import SparseAutoencoder

CONTEXT = 8


def setup():
    torch.manual_seed(0)
    sae = SparseAutoencoder(6, 12)
    with torch.no_grad():  # a random dictionary in which each latent fires on part of the tokens
        for weight in (sae.W_enc, sae.W_dec, sae.b_enc):
            weight.copy_(torch.randn_like(weight))
    x = torch.randn(40, 6)  # 5 sequences of 8 tokens
    tokens = torch.arange(40).reshape(5, CONTEXT)
    return sae, x, tokens


def uneven(x):
    return [x[:7], x[7:8], x[8:31], x[31:]]


def test_streamed_top_k_equals_a_full_sort():
    sae, x, _ = setup()
    result = scan(sae, uneven(x), k=3)
    z = sae.encode(x).detach()
    expected = torch.topk(z.T, 3, dim=1)
    assert torch.allclose(result.top_values, expected.values)
    assert torch.equal(result.top_rows, expected.indices)
    assert torch.allclose(result.mean_sq.float(), (z ** 2).mean(0)) and torch.equal(result.fires, (z > 0).sum(0))


def test_latents_are_the_top_by_mean_square_then_a_seeded_sample_of_the_other_alive_ones():
    sae, x, _ = setup()
    result = scan(sae, uneven(x), k=2)
    chosen = choose_latents(result, ContextSpec(top_latents=3, random_latents=2, seed=1))
    alive = (result.fires > 0).nonzero().flatten().tolist()
    top = sorted(alive, key=lambda i: -float(result.mean_sq[i]))[:3]
    assert [i for i, why in chosen if why == "top E[z²]"] == top
    sampled = [i for i, why in chosen if why == "random alive"]
    assert len(sampled) == 2 and set(sampled) <= set(alive) - set(top)
    assert chosen == choose_latents(result, ContextSpec(top_latents=3, random_latents=2, seed=1))


def test_windows_stay_inside_their_sequence():
    assert windows([0, 9, 15], CONTEXT, 2) == [range(0, 3), range(8, 12), range(13, 16)]


def test_every_shaded_value_is_the_latents_activation_at_that_token():
    sae, x, tokens = setup()
    result = scan(sae, uneven(x), k=2)
    latents = choose_latents(result, ContextSpec(top_latents=2, random_latents=1))
    peaks = [r for i, _ in latents for r in result.top_rows[i].tolist()]
    rows = {r for span in windows(peaks, CONTEXT, 3) for r in span}
    at_rows = activations_at(sae, uneven(x), rows, [i for i, _ in latents])
    records = feature_records(result, latents, tokens, lambda i: f"t{i}", 3, at_rows)
    z = sae.encode(x).detach()
    for record in records:
        for example in record["activations"]:
            first = int(example["tokens"][0][1:])  # token ids are row numbers here
            expected = [float(z[first + j, record["index"]]) for j in range(len(example["tokens"]))]
            assert example["values"] == pytest.approx(expected, rel=1e-5)  # a subset's encode may round apart
            assert example["values"][example["maxValueTokenIndex"]] == pytest.approx(example["maxValue"], rel=1e-5)
            assert max(example["values"]) <= record["maxActValue"] * (1 + 1e-5)
            assert first // CONTEXT == example["row"] // CONTEXT, "the window stays in the peak's sequence"


def test_browser_escapes_the_text_it_shows():
    record = {"index": 3, "selected_as": "top E[z²]", "mean_sq": 1.0, "frac_nonzero": 0.5, "maxActValue": 2.0,
              "activations": [{"tokens": ["<script>", "x"], "values": [2.0, 0.0]}]}
    page = browser_html("t", {"layer 0": [record]})
    assert "<script>" not in page and "&lt;script&gt;" in page and "latent 3" in page
