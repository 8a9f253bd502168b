"""Nothing corrupt or non-finite passes silently (issue: content-addressed for real).

Each test damages one artifact the way a disk, a bad GPU or a stale rerun would, and checks that
the reader stops with an error naming the file, before any output is written."""
import json
import logging
import pickle
import struct

import pytest
import torch
from safetensors.torch import save_file

from interplab.activations import ActivationCache, CacheError, ShardWriter
from interplab.grok import checkpoints as ckpt
from interplab.grok import train as grok_train
from interplab.grok.data import SplitConfig
from interplab.grok.fixture import FixtureConfig, write_fixture
from interplab.grok.runs import CAMELYON, CamelyonSetup, Regime, RunSpec
from interplab.grok.tasks import CamelyonTask
from interplab.io import IntegrityError, check_finite, load_tensors
from interplab.publish import assemble
from interplab.sae import L1Policy, SAETrainer, TrainConfig, load_sae
from interplab.sae.checkpoint import WorkDir
from interplab.sae.export import WEIGHTS_FILE, export_snapshot
from interplab.synthetic import InMemorySource
from interplab.teacher.bridge import verify_checkpoint


def flip_bit(path, offset_from_end=8, bit=6):
    """Flip one bit near the end of a file (in a float's exponent for safetensors payloads)."""
    data = bytearray(path.read_bytes())
    data[-offset_from_end] ^= 1 << bit
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------ non-finite data where it enters
def test_check_finite_names_what_and_counts():
    with pytest.raises(FloatingPointError, match=r"shard x holds 2 non-finite value\(s\)"):
        check_finite(torch.tensor([1.0, float("nan"), float("inf")]), "shard x")
    check_finite(torch.ones(3), "fine")


def test_cache_writer_refuses_nan_and_float16_overflow(tmp_path):
    writer = ShardWriter(tmp_path, "train", torch.float16, shard_tokens=4)
    with pytest.raises(FloatingPointError, match="train activations"):
        writer.append(torch.tensor([[1.0, float("nan")]]))
    with pytest.raises(FloatingPointError, match="float16 overflows"):
        writer.append(torch.tensor([[1.0, 70000.0]]))
    assert not list(tmp_path.iterdir()), "no shard written"


def _cache_with(tmp_path, rows):
    from interplab.activations import FORMAT_VERSION, TENSOR_KEY
    from interplab.io import sha256_file

    save_file({TENSOR_KEY: rows}, str(tmp_path / "train_00000.safetensors"))
    shard = {"file": "train_00000.safetensors", "rows": rows.shape[0],
             "sha256": sha256_file(tmp_path / "train_00000.safetensors")}
    manifest = {"format_version": FORMAT_VERSION, "d_model": rows.shape[1], "dtype": "float32", "layer": 0,
                "splits": {"train": {"n_tokens": rows.shape[0], "shards": [shard]},
                           "heldout": {"n_tokens": 0, "shards": []}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return ActivationCache(tmp_path)


def test_cache_reader_refuses_a_shard_with_nan_rows(tmp_path):
    rows = torch.randn(1000, 4)
    rows[3, 1] = float("nan")  # 0.1% of the rows, written by something other than interplab's writer
    cache = _cache_with(tmp_path, rows)
    with pytest.raises(FloatingPointError, match="train_00000.safetensors holds 1 non-finite"):
        next(cache.batches(256, seed=0))


class NaNAfter:
    """An activation source whose batches turn NaN after `clean` batches (a diverging upstream model)."""

    def __init__(self, rows, clean):
        self.inner, self.clean, self.d_model, self.fingerprint = InMemorySource(rows), clean, rows.shape[1], "nan"

    def batches(self, batch_size, seed, epoch=0):
        for index, batch in enumerate(self.inner.batches(batch_size, seed, epoch)):
            yield batch if index < self.clean else torch.full_like(batch, float("nan"))


@pytest.mark.parametrize("clean, where", [(0, "the first tokens that estimate the input scale"),
                                          (10, "SAE training statistics at step")])
def test_sae_training_on_nan_stops_before_any_snapshot(tmp_path, clean, where):
    cfg = TrainConfig(d_in=8, d_sae=16, l1=L1Policy("sum", 1e-3), training_tokens=64 * 40, batch_size=64,
                      snapshot_tokens=(64 * 20,), log_every=5, b_pre_init_tokens=64, normalize_tokens=64,
                      buffer_tokens=128)
    trainer = SAETrainer(cfg, NaNAfter(torch.randn(4096, 8), clean=clean), tmp_path / "work")
    with pytest.raises(FloatingPointError, match=where):
        trainer.train()
    assert not WorkDir(tmp_path / "work").snapshot_path("1280").exists()


# ------------------------------------------------------------------ weights verified on load
def _export(tmp_path):
    weights = {"W_enc": torch.randn(8, 16), "b_enc": torch.zeros(16), "W_dec": torch.randn(16, 8),
               "b_pre": torch.zeros(8)}
    folder, pt = tmp_path / "L00" / "final", tmp_path / "sae_layer00_final.pt"
    export_snapshot(weights, folder, pt, {"trial": "A"})
    return folder, pt


def test_flipped_bit_in_sae_weights_is_named(tmp_path):
    folder, _ = _export(tmp_path)
    load_sae(folder)
    flip_bit(folder / WEIGHTS_FILE)
    with pytest.raises(IntegrityError, match=rf"{WEIGHTS_FILE} is corrupt.*retrain that SAE"):
        load_sae(folder)


def test_truncated_sae_weights_are_named(tmp_path):
    folder, _ = _export(tmp_path)
    cfg = json.loads((folder / "cfg.json").read_text())
    del cfg["metadata"]["weights_sha256"]  # an export from before hashes were recorded: still named
    (folder / "cfg.json").write_text(json.dumps(cfg))
    data = (folder / WEIGHTS_FILE).read_bytes()
    (folder / WEIGHTS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(IntegrityError, match=rf"{WEIGHTS_FILE} cannot be read"):
        load_sae(folder)


def test_publish_copies_and_refuses_corrupt_weights(tmp_path):
    import pandas as pd

    from interplab.publish import SnapshotFiles, TrialCard

    folder, pt = _export(tmp_path / "sae")
    sparsity = tmp_path / "final.sparsity.safetensors"
    save_file({"sparsity": torch.zeros(16)}, str(sparsity))
    card = TrialCard(trial="A", model_name="m", base_model=None, dataset=None, revision="final", hook="h", layers=[0],
                     d_in=8, d_sae=16, l1_policy="fixed", training_tokens=1, snapshots=["final"], metrics=pd.DataFrame(
                         {"layer": [0], "l0": [1.0], "alpha": [0.9], "dstar": [1.0], "mse": [0.1], "fvu": [0.2], "dead": [0]}))
    files = {(0, "final"): SnapshotFiles(folder, pt, sparsity)}
    out = assemble(card, files, card.metrics, tmp_path / "hub")
    published = out / "saelens/layer_00/final" / WEIGHTS_FILE
    assert published.stat().st_ino != (folder / WEIGHTS_FILE).stat().st_ino, "a copy, not a hard link"
    flip_bit(published)
    load_sae(folder)  # damage to the published copy does not reach the original
    flip_bit(pt)
    with pytest.raises(IntegrityError, match="sae_layer00_final.pt is corrupt"):
        assemble(card, files, card.metrics, tmp_path / "hub2")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("wilds")
    write_fixture(root, FixtureConfig(n_per_hospital=16, image_size=16))
    setup = CamelyonSetup(data=SplitConfig(root_dir=str(root), max_eval=16), n_train=24, batch_size=8)
    spec = RunSpec(name="standard-n24-s0", task=CAMELYON, seed=0, epochs=2, checkpoints=(0, 1, 2), eval_every=1,
                   regime=Regime("standard", lr=1e-3, weight_decay=1e-4), grokfast_alpha=0.98, grokfast_lamb=2.0,
                   setup=setup)
    return root, spec, CamelyonTask(setup, seed=0, device="cpu")


def test_flipped_bit_in_grok_checkpoint_is_named(tiny_run, tmp_path):
    _, spec, task = tiny_run
    grok_train.train_run(spec, task, tmp_path)
    ckpt.load_model(tmp_path, 2)
    flip_bit(ckpt.checkpoint_path(tmp_path, 2))
    with pytest.raises(IntegrityError, match="epoch_00002.safetensors is corrupt.*forcerun grok_train"):
        ckpt.load_model(tmp_path, 2)


def test_flipped_bit_in_teacher_checkpoint_is_named(tmp_path):
    from interplab.io import write_json, sha256_file

    save_file({"w": torch.ones(4)}, str(tmp_path / "model.safetensors"))
    write_json(tmp_path / "interplab_provenance.json", {"weights_sha256": sha256_file(tmp_path / "model.safetensors")})
    verify_checkpoint(tmp_path)
    flip_bit(tmp_path / "model.safetensors", offset_from_end=2)
    with pytest.raises(IntegrityError, match="model.safetensors is corrupt.*teacher_train"):
        verify_checkpoint(tmp_path)


def test_load_tensors_names_a_missing_file(tmp_path):
    with pytest.raises(IntegrityError, match="nothing.safetensors is missing; fix it"):
        load_tensors(tmp_path / "nothing.safetensors", "0" * 64, "fix it")


# ------------------------------------------------------------------ resume only on the same data
def test_sae_resume_on_changed_data_starts_afresh(tmp_path, caplog):
    cfg = TrainConfig(d_in=8, d_sae=16, l1=L1Policy("sum", 1e-3), training_tokens=64 * 40, batch_size=64,
                      snapshot_tokens=(64 * 20,), log_every=5, b_pre_init_tokens=64)
    first, second = InMemorySource(torch.randn(4096, 8)), InMemorySource(torch.randn(4096, 8) + 1)
    work = WorkDir(tmp_path)
    SAETrainer(cfg, first, tmp_path).train()
    assert work.load_state(cfg.fingerprint(first.fingerprint)) is not None
    with caplog.at_level(logging.INFO):
        assert work.load_state(cfg.fingerprint(second.fingerprint)) is None
    assert "different config or different input data" in caplog.text
    assert SAETrainer(cfg, second, tmp_path).train().resumed_from_step == 0


def test_grok_resume_on_changed_data_starts_afresh(tiny_run, tmp_path, monkeypatch, caplog):
    root, spec, task = tiny_run
    metadata = root / "camelyon17_v1.0" / "metadata.csv"
    inputs = {"metadata": str(metadata)}
    real_save = grok_train._save_resume

    def killed_after_epoch_1(run_dir, state):
        real_save(run_dir, state)
        raise KeyboardInterrupt

    monkeypatch.setattr(grok_train, "_save_resume", killed_after_epoch_1)
    with pytest.raises(KeyboardInterrupt):
        grok_train.train_run(spec, task, tmp_path, inputs=inputs)
    monkeypatch.setattr(grok_train, "_save_resume", real_save)
    original = metadata.read_text()
    try:
        metadata.write_text(original + "\n")  # the dataset changed under the killed run
        with caplog.at_level(logging.INFO):
            grok_train.train_run(spec, task, tmp_path, inputs=inputs)
    finally:
        metadata.write_text(original)
    assert "different run spec or different input data" in caplog.text and "resuming after epoch" not in caplog.text


# ------------------------------------------------------------------ resume files never unpickle code
class Payload:
    def __reduce__(self):
        return (print, ("code ran",))


def test_resume_files_are_loaded_weights_only(tmp_path):
    work = WorkDir(tmp_path)
    work.path.mkdir(exist_ok=True)
    torch.save({"fingerprint": "x", "evil": Payload()}, work.state_path)
    with pytest.raises(pickle.UnpicklingError):
        work.load_state("x")
    torch.save({"fingerprint": "x", "evil": Payload()}, tmp_path / ckpt.RESUME)
    with pytest.raises(pickle.UnpicklingError):
        grok_train._load_resume(tmp_path, "x", "cpu")


def test_dvcignore_covers_work_directories(root):
    patterns = (root / ".dvcignore").read_text()
    for pattern in ("**/.train/", "**/resume.pt", "**/.*.partial/"):
        assert pattern in patterns
