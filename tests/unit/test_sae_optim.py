"""LazyAdam: torch's Adam wherever a gradient is non-zero; untouched latents keep values and moments."""
import pytest
import torch

from interplab.sae.optim import LazyAdam


def adam_pair(lazy_dim):
    torch.manual_seed(0)
    ours = torch.nn.Parameter(torch.randn(3, 5))
    reference = torch.nn.Parameter(ours.detach().clone())
    lazy = LazyAdam([{"params": [ours], "lazy_dim": lazy_dim}], lr=0.01)
    adam = torch.optim.Adam([reference], lr=0.01, foreach=False)
    return ours, lazy, reference, adam


@pytest.mark.parametrize("lazy_dim", [None, 1, -1, 0])
def test_equals_torch_adam_when_every_slice_has_a_gradient(lazy_dim):
    ours, lazy, reference, adam = adam_pair(lazy_dim)
    for step in range(5):
        grad = torch.randn(3, 5, generator=torch.Generator().manual_seed(step))
        ours.grad, reference.grad = grad.clone(), grad.clone()
        lazy.step()
        adam.step()
    torch.testing.assert_close(ours, reference, rtol=1e-6, atol=1e-7)
    for key in ("exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(lazy.state[ours][key], adam.state[reference][key], rtol=1e-5, atol=1e-7)


def test_a_column_without_gradient_keeps_its_value_and_moments_and_the_rest_is_adam():
    ours, lazy, reference, adam = adam_pair(lazy_dim=1)
    grads = [torch.randn(3, 5, generator=torch.Generator().manual_seed(step)) for step in range(4)]
    for grad in grads[:2]:  # every column touched: both optimizers agree
        ours.grad, reference.grad = grad.clone(), grad.clone()
        lazy.step()
        adam.step()
    frozen = ours.detach()[:, 2].clone()
    moments = {key: lazy.state[ours][key][:, 2].clone() for key in ("exp_avg", "exp_avg_sq")}
    for grad in grads[2:]:
        grad[:, 2] = 0.0  # latent 2 did not fire
        ours.grad, reference.grad = grad.clone(), grad.clone()
        lazy.step()
        adam.step()
    assert torch.equal(ours.detach()[:, 2], frozen), "no gradient, no move (plain Adam's momentum would move it)"
    assert not torch.equal(reference.detach()[:, 2], frozen)
    for key, value in moments.items():
        assert torch.equal(lazy.state[ours][key][:, 2], value), key
    # The touched columns follow Adam with the global step's bias correction: the same as plain Adam
    # here, since their gradients were never zero.
    keep = [0, 1, 3, 4]
    torch.testing.assert_close(ours.detach()[:, keep], reference.detach()[:, keep], rtol=1e-6, atol=1e-7)


def test_a_column_with_a_single_non_zero_entry_counts_as_touched():
    ours, lazy, _, _ = adam_pair(lazy_dim=1)
    grad = torch.zeros(3, 5)
    grad[1, 4] = 1.0
    before = ours.detach().clone()
    ours.grad = grad
    lazy.step()
    moved = (ours.detach() != before).any(dim=0)
    assert moved.tolist() == [False, False, False, False, True]
    assert torch.equal(ours.detach()[[0, 2], 4], before[[0, 2], 4]), "Adam moves an entry by its own gradient only"
