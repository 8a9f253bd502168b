"""Teacher library: corpus hashing, tokenizer, token streams, checkpoint schedule, training, plan."""
import numpy as np
import pytest
import torch

from interplab.teacher.corpus import CorpusSpec, Document, corpus_sha256, stdlib_documents
from interplab.teacher.plan import lm_plan
from interplab.teacher.streams import StreamSpec, encode_documents, load_streams, save_streams, split_streams, take_tokens
from interplab.teacher.tokenizer import EOS, load_tokenizer, train_tokenizer
from interplab.teacher.config import checkpoint_label, checkpoint_steps
from interplab.teacher.train import warmup_cosine, train_teacher, unigram_entropy
from tiny_lm import TINY, tiny_texts


@pytest.fixture(scope="module")
def tokenizer():
    return train_tokenizer(tiny_texts(), TINY.vocab_size)


def test_stdlib_corpus_is_sorted_and_hashed():
    docs = stdlib_documents()
    names = [doc.name for doc in docs]
    assert names == sorted(names) and "os.py" in names
    assert corpus_sha256(docs) == corpus_sha256(stdlib_documents())
    changed = [Document(docs[0].name, docs[0].text + " "), *docs[1:]]
    assert corpus_sha256(changed) != corpus_sha256(docs)
    # (name, text) boundaries matter: moving a character between them changes the hash
    assert corpus_sha256([Document("ab", "c")]) != corpus_sha256([Document("a", "bc")])


def test_missing_stdlib_and_bad_source_fail_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no \\*.py files"):
        stdlib_documents(tmp_path)
    with pytest.raises(ValueError, match="corpus source"):
        CorpusSpec(source="web")


def test_tokenizer_round_trips_and_saves(tmp_path, tokenizer):
    text = "def f(x):\n    return x ** 2  # ünïcode\n"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    assert tokenizer.eos_token == EOS and tokenizer.eos_token_id == 0
    assert len(tokenizer) == TINY.vocab_size
    tokenizer.save_pretrained(tmp_path)
    assert load_tokenizer(tmp_path)(text, add_special_tokens=False)["input_ids"] == ids
    with pytest.raises(ValueError, match="too small"):
        train_tokenizer(["x"], 100)


def test_streams_split_disjoint_seeded_and_hashed(tmp_path, tokenizer):
    docs = [Document(str(i), text) for i, text in enumerate(tiny_texts())]
    ids = encode_documents(docs, tokenizer, batch=5)
    assert (ids == tokenizer.eos_token_id).sum() == len(docs)
    assert len(encode_documents(docs, tokenizer, max_tokens=100)) == 100
    spec = StreamSpec(context_length=16, heldout_tokens=40, seed=1)
    streams = split_streams(ids, spec)
    assert streams["heldout"].shape == (3, 16)
    assert streams["train"].shape[0] + 3 == len(ids) // 16
    rows = {tuple(r) for r in streams["train"].tolist()}
    assert not rows & {tuple(r) for r in streams["heldout"].tolist()}
    assert torch.equal(split_streams(ids, spec)["heldout"], streams["heldout"])
    assert not torch.equal(split_streams(ids, StreamSpec(16, 40, seed=2))["heldout"], streams["heldout"])
    digest = save_streams(tmp_path / "s.safetensors", streams)
    assert digest == save_streams(tmp_path / "t.safetensors", streams)
    back = load_streams(tmp_path / "s.safetensors")
    assert all(torch.equal(back[k], streams[k]) for k in streams)
    with pytest.raises(ValueError, match="fewer than the"):
        take_tokens(streams["heldout"], 10_000, "heldout")
    assert take_tokens(streams["train"], 17, "train").shape == (2, 16)
    with pytest.raises(ValueError, match="held-out rows"):
        split_streams(ids[:64], StreamSpec(16, 64))


def test_checkpoint_schedule_is_exponential_plus_final():
    assert checkpoint_steps(10) == [0, 1, 2, 4, 8, 10]
    assert checkpoint_steps(8) == [0, 1, 2, 4, 8]
    assert checkpoint_steps(100, 4) == [0, 1, 4, 16, 64, 100]
    assert [checkpoint_label(s, 10) for s in (0, 4, 10)] == ["step0", "step4", "final"]


def test_learning_rate_warms_up_then_decays():
    rates = [warmup_cosine(step, TINY.lr, TINY.warmup_steps, TINY.steps) for step in range(TINY.steps)]
    assert rates[0] < rates[1] == pytest.approx(TINY.lr)
    assert rates[-1] < rates[2] and min(rates) >= 0.1 * TINY.lr


def test_unigram_entropy():
    assert unigram_entropy(torch.tensor([0, 1, 2, 3]), 8) == pytest.approx(np.log(4))
    assert unigram_entropy(torch.tensor([5, 5, 5]), 8) == pytest.approx(0.0)


def test_training_checkpoints_learns_and_is_deterministic(tokenizer):
    ids = encode_documents([Document("a", t) for t in tiny_texts()], tokenizer)
    streams = split_streams(ids, StreamSpec(TINY.context_length, 64))
    cfg = TINY.__class__(**{**TINY.__dict__, "steps": 16, "lr": 0.01})
    saved: dict[int, dict] = {}

    def keep(step, model):
        saved[step] = {k: v.clone() for k, v in model.state_dict().items()}

    history = train_teacher(cfg, streams, tokenizer, "cpu", keep)
    assert sorted(saved) == checkpoint_steps(16)
    held = history.dropna(subset=["heldout_loss"])["heldout_loss"].to_numpy()
    assert held[-1] < held[0] - 0.5  # learned something (from ln(320) ≈ 5.8)
    first_final = saved[16]
    saved.clear()
    again = train_teacher(cfg, streams, tokenizer, "cpu", keep)
    assert history.equals(again)
    assert all(torch.equal(first_final[k], saved[16][k]) for k in first_final)


def model_section(**overrides):
    base = {"source": "local", "name": "stdlib-neox", "revisions": ["final"], "layers": "all", "n_layers": 24,
            "context_length": 128, "corpus": {"source": "stdlib", "dataset": "d", "split": "train",
                                              "text_field": "text", "seed": 0},
            "teacher": {"n_layers": 4, "steps": 300}}
    return {**base, **overrides}


def test_plan_expands_layers_and_checks_revisions():
    plan = lm_plan(model_section(revisions=["step64", "final"]))
    assert plan.layers == (0, 1, 2, 3) and plan.label == "stdlib-neox"
    assert plan.checkpoints[0] == "step0" and plan.checkpoints[-1] == "final" and "step256" in plan.checkpoints
    hub = lm_plan(model_section(source="hf", name="EleutherAI/pythia-410m", revisions=["step143000"], layers=[3, 0]))
    assert hub.label == "pythia-410m" and hub.layers == (0, 3) and hub.checkpoints == ()
    assert lm_plan(model_section(source="hf", name="EleutherAI/pythia-410m")).layers == tuple(range(24))
    with pytest.raises(ValueError, match="step100.*choose from step0, step1"):
        lm_plan(model_section(revisions=["step100"]))
    with pytest.raises(ValueError, match=r"model.layers \[4\] do not exist.*teacher.n_layers"):
        lm_plan(model_section(layers=[1, 4]))
    with pytest.raises(ValueError, match="corpus.source: stdlib"):
        lm_plan(model_section(corpus={**model_section()["corpus"], "source": "hf"}))
