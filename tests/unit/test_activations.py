"""Activation cache: exact write/read round trip, seeded shuffling, and clear errors on damage."""
import torch
import pytest

from interplab.activations import ActivationCache, CacheError, CacheSpec, ShardWriter, build_caches
from interplab.io import write_json
from interplab.teacher.bridge import BridgeSpec, load_bridge
from tiny_lm import TINY, make_tiny_teacher


@pytest.fixture(scope="module")
def tiny_bridge(tmp_path_factory):
    path, _ = make_tiny_teacher(tmp_path_factory.mktemp("tiny"))
    return load_bridge(BridgeSpec(source="local", name=str(path)))


def write_split(directory, rows, dtype=torch.float32, shard_tokens=10):
    writer = ShardWriter(directory, "train", dtype, shard_tokens)
    for chunk in rows.split(7):  # appends that straddle shard boundaries
        writer.append(chunk)
    shards = writer.close()
    write_json(directory / "manifest.json", {
        "format_version": 1, "model": "m", "revision": "final", "source": "local", "hook": "blocks.0.hook_resid_post",
        "layer": 0, "d_model": rows.shape[1], "dtype": str(dtype).removeprefix("torch."), "context_length": 4,
        "token_stream_sha256": "x",
        "splits": {"train": {"n_tokens": rows.shape[0], "shards": shards}, "heldout": {"n_tokens": 0, "shards": []}},
    })
    return ActivationCache(directory)


@pytest.fixture
def rows():
    return torch.randn(45, 6, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_round_trip_is_exact(tmp_path, rows, dtype):
    cache = write_split(tmp_path, rows, dtype)
    assert [s["rows"] for s in cache.shards] == [10, 10, 10, 10, 5]
    assert cache.n_tokens == 45 and cache.d_model == 6
    back = cache.tensor()
    assert back.dtype == torch.float32
    assert torch.equal(back, rows.to(dtype).to(torch.float32))


def test_batches_cover_every_row_once_in_a_seeded_order(tmp_path, rows):
    cache = write_split(tmp_path, rows)
    batches = list(cache.batches(8, seed=3))
    assert [b.shape[0] for b in batches] == [8, 8, 8, 8, 8, 5]
    got = torch.cat(batches)
    assert not torch.equal(got, rows)  # shuffled
    assert torch.equal(got[got[:, 0].argsort()], rows[rows[:, 0].argsort()])  # a permutation of all rows
    assert torch.equal(torch.cat(list(cache.batches(8, seed=3))), got)  # seeded
    assert not torch.equal(torch.cat(list(cache.batches(8, seed=3, epoch=1))), got)  # epochs differ
    assert [b.shape[0] for b in cache.batches(8, seed=3, drop_last=True)] == [8] * 5


def test_flipped_byte_names_the_shard(tmp_path, rows):
    cache = write_split(tmp_path, rows)
    shard = tmp_path / "train_00002.safetensors"
    data = bytearray(shard.read_bytes())
    data[-3] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(CacheError, match="train_00002.safetensors is corrupt"):
        list(cache.batches(8, seed=0))


def test_missing_shard_and_missing_manifest_are_named(tmp_path, rows):
    cache = write_split(tmp_path, rows)
    (tmp_path / "train_00004.safetensors").unlink()
    with pytest.raises(CacheError, match="train_00004.safetensors is missing"):
        cache.tensor()
    with pytest.raises(CacheError, match="manifest.json is missing"):
        ActivationCache(tmp_path / "nowhere")


def build_tiny(bridge, directory, tokens, dtype="float32"):
    spec = CacheSpec(model="tiny", revision="final", source="local", layers=[0, 1], dtype=dtype,
                     shard_tokens=10, batch_size=2)
    dirs = {layer: directory / f"L{layer:02d}" for layer in spec.layers}
    build_caches(bridge, {"train": tokens[:3], "heldout": tokens[3:]}, spec, dirs, token_stream_sha256="abc",
                 device="cpu", provenance={"test": True})
    return spec, dirs


def test_build_caches_matches_a_direct_forward(tmp_path, tiny_bridge):
    bridge = tiny_bridge
    tokens = torch.randint(0, TINY.vocab_size, (5, 8), generator=torch.Generator().manual_seed(1))
    spec, dirs = build_tiny(bridge, tmp_path, tokens)
    with torch.inference_mode():
        _, direct = bridge.run_with_cache(tokens)
    for layer in spec.layers:
        train, heldout = ActivationCache(dirs[layer]), ActivationCache(dirs[layer], split="heldout")
        assert train.n_tokens == 24 and heldout.n_tokens == 16 and train.manifest["token_stream_sha256"] == "abc"
        expected = direct[f"blocks.{layer}.hook_resid_post"].reshape(-1, train.d_model)
        torch.testing.assert_close(torch.cat([train.tensor(), heldout.tensor()]), expected, rtol=1e-5, atol=1e-5)
    assert not list(tmp_path.glob(".*partial*"))  # staging directories are gone


def test_same_inputs_give_byte_identical_caches(tmp_path, tiny_bridge):
    tokens = torch.randint(0, TINY.vocab_size, (5, 8), generator=torch.Generator().manual_seed(2))
    _, first = build_tiny(tiny_bridge, tmp_path / "a", tokens, dtype="float16")
    _, second = build_tiny(tiny_bridge, tmp_path / "b", tokens, dtype="float16")
    for layer in first:
        files = sorted(p.name for p in first[layer].iterdir() if p.name != "provenance.json")
        assert files == sorted(p.name for p in second[layer].iterdir() if p.name != "provenance.json")
        assert "manifest.json" in files and len(files) > 3
        for name in files:
            assert (first[layer] / name).read_bytes() == (second[layer] / name).read_bytes(), name


def test_layers_beyond_the_model_are_rejected(tmp_path, tiny_bridge):
    spec = CacheSpec(model="tiny", revision="final", source="local", layers=[TINY.n_layers])
    with pytest.raises(ValueError, match=f"layers \\[{TINY.n_layers}\\] do not exist"):
        tokens = torch.zeros(1, 4, dtype=torch.long)
        build_caches(tiny_bridge, {"train": tokens, "heldout": tokens}, spec, {TINY.n_layers: tmp_path / "L"},
                     token_stream_sha256="x", device="cpu")


def test_cache_spec_rejects_unknown_dtype():
    with pytest.raises(ValueError, match="float8"):
        CacheSpec(model="m", revision="r", source="local", layers=[0], dtype="float8")


def test_a_failed_build_leaves_no_directory(tmp_path, tiny_bridge):
    class Failing:
        cfg = tiny_bridge.cfg

        def run_with_cache(self, *args, **kwargs):
            raise RuntimeError("killed mid-run")

    spec = CacheSpec(model="tiny", revision="final", source="local", layers=[0])
    tokens = torch.zeros(2, 4, dtype=torch.long)
    with pytest.raises(RuntimeError, match="killed mid-run"):
        build_caches(Failing(), {"train": tokens, "heldout": tokens}, spec, {0: tmp_path / "L00"}, "x", "cpu")
    assert list(tmp_path.iterdir()) == []
