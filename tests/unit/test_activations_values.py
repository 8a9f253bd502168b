"""Activation cache details test_activations.py leaves open: shards written while streaming, batches
larger than a shard, an empty split, bad arguments, and every manifest field of a build."""
import pytest
import torch

from interplab.activations import SPLITS, ActivationCache, CacheSpec, ShardWriter, build_caches, hook_name
from interplab.io import read_json, sha256_file, write_json
from interplab.teacher.bridge import BridgeSpec, load_bridge
from tiny_lm import TINY, make_tiny_teacher


def cache_of(directory, rows, shard_tokens=10):
    writer = ShardWriter(directory, "train", torch.float32, shard_tokens)
    writer.append(rows)
    write_json(directory / "manifest.json", {
        "format_version": 1, "d_model": rows.shape[1], "dtype": "float32", "layer": 0,
        "splits": {"train": {"n_tokens": rows.shape[0], "shards": writer.close()}, "heldout": {"n_tokens": 0, "shards": []}},
    })
    return directory


def test_a_full_shard_is_written_as_soon_as_it_fills(tmp_path):
    writer = ShardWriter(tmp_path, "heldout", torch.float32, shard_tokens=4)
    writer.append(torch.ones(4, 2))
    assert [r["rows"] for r in writer.records] == [4] and (tmp_path / "heldout_00000.safetensors").exists()
    writer.append(torch.ones(3, 2))
    assert len(writer.records) == 1, "a partial shard waits for more rows or close()"
    assert [r["rows"] for r in writer.close()] == [4, 3]
    assert [r["file"] for r in writer.records] == ["heldout_00000.safetensors", "heldout_00001.safetensors"]


def test_batches_larger_than_a_shard_gather_rows_across_shards(tmp_path):
    rows = torch.arange(45.0)[:, None]  # one column: a row count mixed up with the width shows
    cache = ActivationCache(cache_of(tmp_path, rows))
    for batch_size, sizes in ((25, [25, 20]), (21, [21, 21, 3]), (45, [45]), (1, [1] * 45), (8, [8] * 5 + [5])):
        batches = list(cache.batches(batch_size, seed=0))
        assert [b.shape[0] for b in batches] == sizes
        assert sorted(torch.cat(batches)[:, 0].tolist()) == list(range(45)), "every row once"
        full = [b.shape[0] for b in cache.batches(batch_size, seed=0, drop_last=True)]
        assert full == [s for s in sizes if s == batch_size], "drop_last drops only the short batch"
    with pytest.raises(ValueError, match="batch_size must be positive"):
        next(cache.batches(0, seed=0))


def test_an_empty_split_reads_as_zero_rows(tmp_path):
    heldout = ActivationCache(cache_of(tmp_path, torch.ones(5, 3)), split="heldout")
    assert heldout.split == "heldout" and heldout.n_tokens == 0 and heldout.tensor().shape == (0, 3)
    assert heldout.fingerprint == sha256_file(tmp_path / "manifest.json")
    assert list(heldout.batches(4, seed=0)) == []
    with pytest.raises(ValueError, match="split must be one of"):
        ActivationCache(tmp_path, split="test")


@pytest.fixture(scope="module")
def tiny_bridge(tmp_path_factory):
    path, _ = make_tiny_teacher(tmp_path_factory.mktemp("tiny"))
    return load_bridge(BridgeSpec(source="local", name=str(path)))


def test_manifest_records_what_the_rows_are(tmp_path, tiny_bridge):
    # more sequences than tokens per sequence, so sequence and position counts cannot stand in for each other
    tokens = torch.randint(0, TINY.vocab_size, (9, 4), generator=torch.Generator().manual_seed(3))
    spec = CacheSpec(model="tiny", revision="step4", source="local", layers=[0, 2], dtype="float16", shard_tokens=16,
                     batch_size=2, loader="hf")
    manifests = build_caches(tiny_bridge, {"train": tokens[:6], "heldout": tokens[6:]}, spec,
                             {0: tmp_path / "L00", 2: tmp_path / "L02"}, token_stream_sha256="abc", device="cpu")
    for layer, manifest in manifests.items():
        assert manifest == ActivationCache(tmp_path / f"L{layer:02d}").manifest
        assert {k: manifest[k] for k in ("model", "revision", "source", "loader", "hook", "layer", "d_model", "dtype",
                                         "context_length", "token_stream_sha256")} == {
            "model": "tiny", "revision": "step4", "source": "local", "loader": "hf", "hook": hook_name(layer),
            "layer": layer, "d_model": TINY.d_model, "dtype": "float16", "context_length": 4, "token_stream_sha256": "abc"}
        assert {split: manifest["splits"][split]["n_tokens"] for split in SPLITS} == {"train": 24, "heldout": 12}
        assert [s["rows"] for s in manifest["splits"]["train"]["shards"]] == [16, 8]
        assert not (tmp_path / f"L{layer:02d}" / "provenance.json").exists(), "written only when given"
    build_caches(tiny_bridge, {"train": tokens[:6], "heldout": tokens[6:]}, spec, {0: tmp_path / "P0", 2: tmp_path / "P2"},
                 token_stream_sha256="abc", device="cpu", provenance={"by": "test"})
    assert read_json(tmp_path / "P2" / "provenance.json") == {"by": "test"}


def test_build_rejects_wrong_splits_and_negative_layers(tmp_path, tiny_bridge):
    tokens = torch.zeros(1, 4, dtype=torch.long)
    spec = CacheSpec(model="tiny", revision="final", source="local", layers=[0])
    with pytest.raises(ValueError, match="exactly the splits"):
        build_caches(tiny_bridge, {"train": tokens}, spec, {0: tmp_path / "L00"}, "x", "cpu")
    with pytest.raises(ValueError, match=r"layers \[-1\] do not exist"):
        build_caches(tiny_bridge, {"train": tokens, "heldout": tokens},
                     CacheSpec(model="tiny", revision="final", source="local", layers=[-1]), {-1: tmp_path / "L"}, "x", "cpu")
    with pytest.raises(ValueError, match="no layers"):
        CacheSpec(model="tiny", revision="final", source="local", layers=[])
