"""Spliced-reconstruction metrics on the tiny teacher: the identity and zero "SAEs" pin the ends of
CE loss recovered, and one real SAE's numbers match a plain HF forward with a manual hook."""
import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from interplab.sae.evaluate import CONVENTION, recovered, splice_metrics, splice_record
from interplab.sae.model import SparseAutoencoder
from interplab.teacher.bridge import BridgeSpec, load_bridge
from tiny_lm import TINY, make_tiny_teacher


class Identity:
    def encode(self, x):
        return x

    def decode(self, z):
        return z


class Zero:
    def encode(self, x):
        return x

    def decode(self, z):
        return torch.zeros_like(z)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    torch.manual_seed(0)  # build_model draws its init from the global generator
    path, _ = make_tiny_teacher(tmp_path_factory.mktemp("tiny"))
    return path, load_bridge(BridgeSpec(source="local", name=str(path)))


@pytest.fixture(scope="module")
def tokens():
    return torch.randint(0, TINY.vocab_size, (5, 12), generator=torch.Generator().manual_seed(0))


def test_identity_recovers_everything_and_zero_nothing(teacher, tokens):
    _, bridge = teacher
    mean = torch.randn(TINY.d_model, generator=torch.Generator().manual_seed(1))
    out = splice_metrics(bridge, tokens, 1, {"id": Identity(), "zero": Zero()}, mean, batch_size=2)
    ident, zero = out["id"], out["zero"]
    assert ident.n_tokens == 5 * 11
    assert ident.ce_spliced == pytest.approx(ident.ce_clean, abs=1e-5)
    assert ident.ce_recovered_zero == pytest.approx(1.0, abs=1e-4)
    assert ident.ce_recovered_mean == pytest.approx(1.0, abs=1e-4)
    assert ident.kl_clean_spliced == pytest.approx(0.0, abs=1e-6)
    assert zero.ce_spliced == pytest.approx(zero.ce_zero_ablation, abs=1e-6)
    assert zero.ce_recovered_zero == pytest.approx(0.0, abs=1e-4)
    assert zero.kl_clean_spliced > 0
    # every SAE of the layer shares the clean and ablated references of the one forward
    assert ident.ce_clean == zero.ce_clean and ident.ce_mean_ablation == zero.ce_mean_ablation
    assert ident.ce_zero_ablation != ident.ce_mean_ablation


def test_batching_does_not_change_the_numbers(teacher, tokens):
    _, bridge = teacher
    mean = torch.zeros(TINY.d_model)
    sae = SparseAutoencoder(TINY.d_model, 64)
    sae.initialize(torch.Generator().manual_seed(0))
    one = splice_metrics(bridge, tokens, 0, {"s": sae}, mean, batch_size=5)["s"]
    many = splice_metrics(bridge, tokens, 0, {"s": sae}, mean, batch_size=2)["s"]
    for key, value in one.scalars().items():
        assert getattr(many, key) == pytest.approx(value, rel=1e-5, abs=1e-7), key


def test_values_match_a_plain_hf_forward_with_a_manual_hook(teacher, tokens):
    """Independent re-computation: transformers' GPTNeoX, a forward hook on block L's output (that
    output is resid_post), torch's own cross_entropy and kl_div."""
    path, bridge = teacher
    layer = 1
    sae = SparseAutoencoder(TINY.d_model, 64)
    sae.initialize(torch.Generator().manual_seed(3))
    with torch.no_grad():
        sae.b_enc.add_(0.05)  # some latents fire
    hf = AutoModelForCausalLM.from_pretrained(path).eval()
    captured = {}

    def capture(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output
        captured["x"] = hidden.detach().clone()

    def run(replace=None):
        def hook(module, args, output):
            hidden = output[0] if isinstance(output, tuple) else output
            new = replace(hidden)
            return (new, *output[1:]) if isinstance(output, tuple) else new
        handle = hf.gpt_neox.layers[layer].register_forward_hook(hook if replace else capture)
        try:
            with torch.no_grad():
                return hf(tokens).logits.double()
        finally:
            handle.remove()

    clean = run()
    x = captured["x"]
    mean = x.reshape(-1, x.shape[-1]).mean(0)
    spliced = run(lambda h: sae.decode(sae.encode(h.reshape(-1, h.shape[-1]))).reshape(h.shape))
    zero = run(torch.zeros_like)
    meaned = run(lambda h: mean.expand_as(h).clone())

    def ce(logits):
        return float(torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                                       tokens[:, 1:].reshape(-1)))

    kl = float(torch.nn.functional.kl_div(spliced.log_softmax(-1).reshape(-1, spliced.shape[-1]),
                                          clean.log_softmax(-1).reshape(-1, clean.shape[-1]),
                                          log_target=True, reduction="batchmean"))
    got = splice_metrics(bridge, tokens, layer, {"s": sae}, mean, batch_size=2)["s"]
    assert got.ce_clean == pytest.approx(ce(clean), rel=1e-5)
    assert got.ce_spliced == pytest.approx(ce(spliced), rel=1e-5)
    assert got.ce_zero_ablation == pytest.approx(ce(zero), rel=1e-5)
    assert got.ce_mean_ablation == pytest.approx(ce(meaned), rel=1e-5)
    assert got.kl_clean_spliced == pytest.approx(kl, rel=1e-4, abs=1e-7)
    assert got.ce_recovered_zero == pytest.approx((ce(zero) - ce(spliced)) / (ce(zero) - ce(clean)), rel=1e-4)
    assert got.ce_spliced != pytest.approx(got.ce_clean, rel=1e-6), "the SAE is not an identity"


def test_record_without_an_lm_is_nan_and_names_the_convention():
    rec = splice_record(None, trial="A", snapshot="final")
    assert rec["trial"] == "A" and math.isnan(rec["ce_recovered_zero"]) and math.isnan(rec["kl_clean_spliced"])
    assert rec["ce_recovered_convention"] == CONVENTION == "zero"
    assert math.isnan(recovered(2.0, 1.0, 2.0))
