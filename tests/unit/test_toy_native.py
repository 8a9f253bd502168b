"""The native toy engine (toy_kernel.c through toy_native.NativeStep) against autograd and the torch engine."""

import dataclasses
import logging

import numpy as np
import pytest
import torch

from interplab import native, toy
from interplab.toy_native import NativeStep


def _autograd(weight, bias, x, target, imp):
    """Gradients and loss of Σ_i I_i (t_i − ReLU(WᵀWx + b)_i)², batch mean, summed over models."""
    weight, bias = weight.clone().requires_grad_(), bias.clone().requires_grad_()
    recon = torch.relu(torch.einsum("smbd,smdf->smbf", torch.einsum("smdf,sbf->smbd", weight, x), weight)
                       + bias.unsqueeze(2))
    loss = ((recon - target.unsqueeze(1)) ** 2 * imp).sum(-1).mean(-1)
    loss.sum().backward()
    return weight.grad, bias.grad, loss.detach()


def _batch(seeds, batch, n_features, alpha):
    """The same batch as words (for the kernel) and as x (for autograd), from two copies of one stream."""
    words = toy.FeatureStream("native-test", seeds, batch, n_features, alpha, "cpu").next_words()
    x = toy.FeatureStream("native-test", seeds, batch, n_features, alpha, "cpu").next()
    return words, x


@pytest.fixture(scope="module")
def portable_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("portable-kernel")


@pytest.fixture(params=["native", "portable"])
def kernel_build(request, monkeypatch, portable_cache):
    """The kernel as built for this CPU (AVX-512 here), and a portable build without -march (plain C paths)."""
    if request.param == "portable":
        monkeypatch.setenv("INTERPLAB_NATIVE_CACHE", str(portable_cache))
        monkeypatch.setenv("INTERPLAB_CFLAGS", "-O2")
    native.load.cache_clear()
    yield request.param
    native.load.cache_clear()


@pytest.mark.parametrize(
    "n_features, widths, teacher_width",
    [
        (20, (1, 3, 7), None),  # F padded to 32 columns; widths padded to 7 rows
        (20, (1, 3, 7), 4),  # distilled: the kernel computes the teacher's output itself
        (10, tuple(range(1, 15)), None),  # 14 models: more than one register group of one-vector slabs
        (70, (2, 5), 3),  # a 4-vector slab and a remainder slab per model
    ],
)
def test_native_gradients_and_loss_match_autograd(n_features, widths, teacher_width, kernel_build):
    seeds, batch, alpha = (0, 1), 64, 0.7
    weight, bias, mask = toy._init_models(widths, seeds, n_features, "native-grad", "cpu")
    bias = torch.randn_like(bias) * 0.1  # a bias of both signs, so ReLU cuts some outputs
    imp = toy.importance(n_features, 0.9)
    words, x = _batch(seeds, batch, n_features, alpha)
    teacher = None
    target = x
    if teacher_width is not None:
        gen = torch.Generator().manual_seed(3)
        teacher = (torch.randn(len(seeds), teacher_width, n_features, generator=gen) * 0.5,
                   torch.randn(len(seeds), n_features, generator=gen) * 0.1)
        target = torch.relu(torch.einsum("sdf,sbd->sbf", teacher[0], torch.einsum("sdf,sbf->sbd", teacher[0], x))
                            + teacher[1].unsqueeze(1))
    want_w, want_b, want_loss = _autograd(weight, bias, x, target, imp)
    step = NativeStep(weight.clone(), bias.clone(), mask, batch, imp, lr=1e-3, alpha=alpha, teacher=teacher)
    loss = step(words, measure=True)
    torch.testing.assert_close(step.weight.grad, want_w * mask, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(step.bias.grad, want_b, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(loss, want_loss, rtol=1e-5, atol=1e-7)
    rows = torch.arange(max(widths))[None, :] >= torch.tensor(widths)[:, None]
    assert (step.weight[:, rows] == 0).all(), "rows beyond a model's width stay zero"


def test_words_give_the_same_batches_as_floats():
    words_stream = toy.FeatureStream("same", (0, 5), 32, 12, 0.85, "cpu")
    float_stream = toy.FeatureStream("same", (0, 5), 32, 12, 0.85, "cpu")
    for _ in range(3):
        words, x = words_stream.next_words(), float_stream.next()
        uniform = torch.from_numpy((words[:, :32 * 12] >> 8).astype(np.float32) * np.float32(2.0 ** -24))
        assert torch.equal(torch.relu(uniform - np.float32(0.85)) / np.float32(1 - 0.85), x.reshape(2, -1))


def test_native_and_torch_engines_agree():
    cfg = toy.ToyConfig(n_features=20, alpha=0.9, student_widths=(1, 2, 4, 8), seeds=(0, 1), teacher_width=5,
                        steps=200, teacher_steps=200, batch_size=128, eval_samples=4096)
    native_runs = toy.run_config(dataclasses.replace(cfg, engine="native"))
    torch_runs = toy.run_config(dataclasses.replace(cfg, engine="torch"))
    np.testing.assert_allclose(native_runs["eval_loss"], torch_runs["eval_loss"], rtol=1e-4)
    np.testing.assert_allclose(native_runs["final_loss"], torch_runs["final_loss"], rtol=1e-4)
    assert (native_runs["features_represented"] == torch_runs["features_represented"]).all()


def test_engine_resolution():
    assert toy.resolve_engine("torch", "cpu") == "torch"
    assert toy.resolve_engine("auto", "cuda") == "torch"
    assert toy.resolve_engine("native", "cpu") == "native"
    with pytest.raises(ValueError, match="runs on the CPU"):
        toy.resolve_engine("native", "cuda:0")
    with pytest.raises(ValueError, match="not one of"):
        toy.resolve_engine("numba", "cpu")


@pytest.fixture
def broken_compiler(monkeypatch, tmp_path):
    """A machine whose C compiler fails: a fresh, empty cache and $CC pointing at `false`."""
    monkeypatch.setenv("INTERPLAB_NATIVE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CC", "false")
    native.load.cache_clear()
    yield
    native.load.cache_clear()


def test_without_a_compiler_auto_falls_back_and_native_says_why(broken_compiler, caplog):
    with caplog.at_level(logging.WARNING):
        assert toy.resolve_engine("auto", "cpu") == "torch"
    assert "torch engine" in caplog.text
    with pytest.raises(RuntimeError, match="cannot be built here.*compiling toy_kernel.c failed"):
        toy.resolve_engine("native", "cpu")


def test_library_is_built_once_into_the_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("INTERPLAB_NATIVE_CACHE", str(tmp_path))
    native.load.cache_clear()
    try:
        native.load("toy_kernel.c")
        (built,) = tmp_path.glob("toy_kernel-*.so")
        stamp = built.stat().st_mtime_ns
        native.load.cache_clear()
        native.load("toy_kernel.c")
        assert [p.name for p in tmp_path.iterdir()] == [built.name], "no second build, no leftover temporaries"
        assert built.stat().st_mtime_ns == stamp
    finally:
        native.load.cache_clear()
