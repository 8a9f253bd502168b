"""The synthetic activation source: known dictionary, known sparsity, the cache format, MMCS."""
import pytest
import torch

from interplab.activations import ActivationCache
from interplab.synthetic import (InMemorySource, SyntheticConfig, load_ground_truth, mean_max_cosine,
                                 sample_activations, true_dictionary, write_cache)

CFG = SyntheticConfig(d_model=16, n_features=40, alpha=0.9, n_tokens=4000, heldout_tokens=500)


def test_dictionary_is_unit_norm_and_seeded():
    dictionary = true_dictionary(CFG)
    assert dictionary.shape == (40, 16)
    torch.testing.assert_close(torch.linalg.vector_norm(dictionary, dim=1), torch.ones(40))
    assert torch.equal(dictionary, true_dictionary(CFG))


def test_activations_have_the_known_sparsity():
    """Codes are 0 with probability α, else U[0, 1]: E[x] = Σ_i D_i·(1 − α)/2, and L0 = F_true·(1 − α)."""
    dictionary = true_dictionary(CFG)
    x = sample_activations(CFG, dictionary, 20000, "train")
    assert x.shape == (20000, 16)
    expected_mean = dictionary.sum(0) * (1 - CFG.alpha) / 2
    assert torch.linalg.vector_norm(x.mean(0) - expected_mean) < 0.05 * torch.linalg.vector_norm(expected_mean)
    assert CFG.true_l0 == pytest.approx(4.0)
    held = sample_activations(CFG, dictionary, 100, "heldout")
    assert not torch.equal(held, x[:100]), "splits are independent streams"


def test_mean_max_cosine():
    dictionary = true_dictionary(CFG)
    shuffled = dictionary[torch.randperm(40)] * 3.0
    assert mean_max_cosine(dictionary, shuffled) == pytest.approx(1.0)
    assert mean_max_cosine(dictionary, torch.randn(40, 16)) < 0.8


def test_in_memory_source_is_a_seeded_permutation():
    x = torch.arange(10.0)[:, None].repeat(1, 2)
    source = InMemorySource(x)
    epoch0 = torch.cat(list(source.batches(4, seed=1, epoch=0)))
    assert sorted(epoch0[:, 0].tolist()) == list(range(10))
    assert torch.equal(epoch0, torch.cat(list(source.batches(4, seed=1, epoch=0))))
    assert not torch.equal(epoch0, torch.cat(list(source.batches(4, seed=1, epoch=1))))


def test_cache_written_in_the_activation_cache_format(tmp_path):
    write_cache(CFG, tmp_path / "L00", "synth", {"train": 4000, "heldout": 500}, "float32", 1500)
    cache = ActivationCache(tmp_path / "L00")
    assert (cache.d_model, cache.n_tokens, cache.layer) == (16, 4000, 0)
    assert len(cache.shards) == 3 and cache.manifest["synthetic"]["alpha"] == 0.9
    torch.testing.assert_close(ActivationCache(tmp_path / "L00", "heldout").tensor(),
                               sample_activations(CFG, true_dictionary(CFG), 500, "heldout"))
    assert torch.equal(load_ground_truth(tmp_path / "L00"), true_dictionary(CFG))


def test_bad_sparsity_is_rejected():
    with pytest.raises(ValueError, match="alpha"):
        SyntheticConfig(alpha=1.0)
