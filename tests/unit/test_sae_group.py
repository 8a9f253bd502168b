"""The layer-group trainer: K SAEs from one pass equal K SAEs trained alone on the same batch order,
a kill mid-group resumes to byte-identical snapshots, and the sources feed every layer side by side."""
import dataclasses

import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from interplab.activations import ActivationCache, CacheSpec, build_caches
from interplab.sae import AdaptiveL1, L1Policy, TrainConfig
from interplab.sae.checkpoint import WorkDir
from interplab.sae.sources import LayerStack, LMStream, layer_columns
from interplab.sae.trainer import LOG_COLUMNS, GroupTrainer, Member, SAETrainer
from interplab.synthetic import InMemorySource
from interplab.teacher.bridge import BridgeSpec, load_bridge
from test_sae import Killed, KilledAfter
from tiny_lm import TINY, make_tiny_teacher

D = 16
TRIALS = {"fixed": L1Policy("sum", 5e-3), "adaptive": L1Policy("sum", 1e-3, AdaptiveL1(target_l0=4, rate=0.05))}


def config(l1, **overrides) -> TrainConfig:
    base = dict(d_in=D, d_sae=48, l1=l1, training_tokens=128 * 30, batch_size=128, lr=3e-3, log_every=5,
                snapshot_tokens=(128 * 10, 128 * 20), b_pre_init_tokens=512, normalize_tokens=512,
                buffer_tokens=1024, data_seed=11)
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="module")
def layers():
    """Two 'layers' of the same tokens: different scales and offsets, as residual streams have."""
    generator = torch.Generator().manual_seed(0)
    base = torch.relu(torch.randn(4096, 64, generator=generator) - 1.5) @ torch.randn(64, D, generator=generator)
    return [base * 3 + 1, base.roll(1, dims=1) * 0.5 - 2]


def members(tmp_path, n_layers=2, logs=False):
    return {(trial, layer): Member(config(l1, init_seed=100 + layer), tmp_path / f"{trial}-L{layer}",
                                   layer_columns(layer, D), tmp_path / f"{trial}-L{layer}.csv" if logs else None)
            for trial, l1 in TRIALS.items() for layer in range(n_layers)}


def test_group_equals_each_sae_trained_alone(layers, tmp_path):
    group = GroupTrainer(members(tmp_path / "group"), InMemorySource(torch.cat(layers, 1)))
    runs = group.train()
    for (trial, layer), member in members(tmp_path / "group").items():
        alone = SAETrainer(dataclasses.replace(member.cfg), InMemorySource(layers[layer]), tmp_path / f"alone-{trial}-{layer}")
        run = alone.train()
        for name, tensor in alone.sae.state_dict().items():
            assert torch.equal(tensor, group.runs[(trial, layer)].sae.state_dict()[name]), (trial, layer, name)
        assert run.log.equals(runs[(trial, layer)].log)
        assert [s.l1_coefficient for s in run.snapshots] == [s.l1_coefficient for s in runs[(trial, layer)].snapshots]
    fixed, adaptive = runs[("fixed", 0)].log, runs[("adaptive", 0)].log
    assert not fixed["lambda"].equals(adaptive["lambda"]), "the trials differ (by their L1 policy alone)"


def test_kill_mid_group_resumes_to_byte_identical_snapshots(layers, tmp_path):
    rows = torch.cat(layers, 1)
    straight = GroupTrainer(members(tmp_path / "straight"), InMemorySource(rows))
    expected = straight.train()
    # Source reads of 128 rows: 8 fill the buffer for the init samples, 8 more start training, then
    # 4 per 4 steps; 8 + 8 + 4·6 = 40 reads dies at the refill before step 25, after the 20-batch snapshot.
    with pytest.raises(Killed):
        GroupTrainer(members(tmp_path / "killed"), KilledAfter(InMemorySource(rows), 8 + 8 + 4 * 6)).train()
    resumed_group = GroupTrainer(members(tmp_path / "killed"), InMemorySource(rows))
    resumed = resumed_group.train()
    for key, run in resumed.items():
        assert run.resumed_from_step == 20, key
        assert run.log.equals(expected[key].log), key
        for snapshot in ("1280", "2560", "final"):
            path = f"{key[0]}-L{key[1]}"
            a = load_file(WorkDir(tmp_path / "straight" / path).snapshot_path(snapshot))
            b = load_file(WorkDir(tmp_path / "killed" / path).snapshot_path(snapshot))
            assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), (key, snapshot)


def test_training_log_grows_during_training_and_resumes_byte_identical(layers, tmp_path, monkeypatch):
    """Every progress line (here: every logging step) appends the rows logged so far; a kill leaves a
    valid CSV whose rows reach past the last snapshot, and the resumed run drops those rows and
    recomputes them, so the file ends byte-identical to an uninterrupted run's."""
    rows = torch.cat(layers, 1)
    monkeypatch.setenv("INTERPLAB_PROGRESS_SECONDS", "0")
    GroupTrainer(members(tmp_path / "straight", logs=True), InMemorySource(rows)).train()
    # Killed at the same read as above: after the step-25 row, past the step-20 snapshot.
    with pytest.raises(Killed):
        GroupTrainer(members(tmp_path / "killed", logs=True), KilledAfter(InMemorySource(rows), 8 + 8 + 4 * 6)).train()
    for trial, layer in members(tmp_path):
        partial = pd.read_csv(tmp_path / "killed" / f"{trial}-L{layer}.csv")
        assert list(partial.columns) == LOG_COLUMNS
        assert partial["step"].tolist() == [1, 5, 10, 15, 20, 25], (trial, layer)
    monkeypatch.delenv("INTERPLAB_PROGRESS_SECONDS")  # the resumed run appends only at snapshots and the end
    resumed = GroupTrainer(members(tmp_path / "killed", logs=True), InMemorySource(rows)).train()
    for (trial, layer), run in resumed.items():
        name = f"{trial}-L{layer}.csv"
        assert run.resumed_from_step == 20
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "straight" / name).read_bytes()
        assert (tmp_path / "straight" / name).read_text() == run.log.to_csv(index=False), "as write_table writes it"


def test_members_must_share_the_stream(layers, tmp_path):
    group = members(tmp_path)
    group[("fixed", 0)] = dataclasses.replace(group[("fixed", 0)], cfg=config(TRIALS["fixed"], batch_size=64))
    with pytest.raises(ValueError, match=r"differs from the first in \['batch_size'\]"):
        GroupTrainer(group, InMemorySource(torch.cat(layers, 1)))
    with pytest.raises(ValueError, match="reads 32 columns"):
        GroupTrainer({"x": Member(config(TRIALS["fixed"]), tmp_path / "x")}, InMemorySource(torch.cat(layers, 1)))


@pytest.fixture(scope="module")
def tiny_bridge(tmp_path_factory):
    path, _ = make_tiny_teacher(tmp_path_factory.mktemp("teacher"))
    return load_bridge(BridgeSpec(source="local", name=str(path)))


def test_layer_stack_and_lm_stream_give_every_layer_side_by_side(tiny_bridge, tmp_path):
    bridge = tiny_bridge
    tokens = torch.randint(0, TINY.vocab_size, (28, 16), generator=torch.Generator().manual_seed(1))
    streams = {"train": tokens[:24], "heldout": tokens[24:28]}
    spec = CacheSpec(model="tiny", revision="final", source="local", layers=(0, 1), dtype="float32", shard_tokens=100)
    dirs = {layer: tmp_path / f"L{layer}" for layer in (0, 1)}
    build_caches(bridge, streams, spec, dirs, token_stream_sha256="sha", device="cpu")
    caches = [ActivationCache(dirs[layer]) for layer in (0, 1)]
    stack = LayerStack(caches)
    assert stack.d_model == 2 * caches[0].d_model
    for joint, *alone in zip(stack.batches(64, seed=3, epoch=1), *(c.batches(64, seed=3, epoch=1) for c in caches)):
        torch.testing.assert_close(joint, torch.cat(alone, 1), rtol=0, atol=0)
    stream = LMStream(bridge, streams["train"], [0, 1], sequences_per_forward=5, device="cpu", fingerprint="x")
    rows = torch.cat(list(stream.batches(0, seed=0)))
    assert rows.shape == (streams["train"].numel(), stack.d_model)
    by_token = {tuple(r.tolist()) for r in torch.cat([caches[0].tensor(), caches[1].tensor()], 1)}
    assert all(tuple(r.tolist()) in by_token for r in rows[:50]), "the stream's rows are the cached activations"
    first = torch.cat(list(stream.batches(0, seed=0)))
    assert torch.equal(first, rows) and not torch.equal(torch.cat(list(stream.batches(0, seed=0, epoch=1))), rows)
