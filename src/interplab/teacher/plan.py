"""What the lm stage builds, derived once from the `model` config section.

The Snakefile needs the model's path label, the checkpoint labels, the layer list and the
revision wildcard values before any job runs; deriving and checking them here (not in the .smk)
keeps the rules thin and turns a bad combination into one message naming the key and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from interplab.teacher.config import TeacherConfig, checkpoint_label, checkpoint_steps
from interplab.teacher.corpus import CorpusSpec

MODEL_SOURCES = ("local", "hf")


@dataclass(frozen=True)
class LMPlan:
    source: str
    name: str
    label: str  # the {model} path component: the name, or the last part of a hub id
    revisions: tuple[str, ...]
    layers: tuple[int, ...]
    corpus: CorpusSpec
    stream_seed: int
    teacher: TeacherConfig
    checkpoints: tuple[str, ...]  # local: every saved checkpoint label (step0 … final); hf: ()


def stream_settings(plan: LMPlan, cache: Mapping[str, Any]) -> dict:
    """What the token streams depend on (teacher_streams' params). The local corpus is used whole,
    since the teacher trains on it; a hub corpus is read only up to the cache's token budget."""
    return {"context_length": plan.teacher.context_length, "heldout_tokens": cache["heldout_tokens"],
            "train_tokens": None if plan.corpus.source == "stdlib" else cache["train_tokens"],
            "seed": plan.stream_seed}


def lm_plan(model: Mapping[str, Any]) -> LMPlan:
    """Validate the cross-key constraints of the lm stage; raise ValueError naming the key."""
    source = model["source"]
    if source not in MODEL_SOURCES:
        raise ValueError(f"model.source {source!r} has no teacher or cache: use one of {MODEL_SOURCES}")
    teacher_keys = {f.name for f in fields(TeacherConfig)} - {"context_length"}
    teacher = TeacherConfig(context_length=model["context_length"],
                            **{k: v for k, v in model["teacher"].items() if k in teacher_keys})
    corpus = CorpusSpec(**{k: v for k, v in model["corpus"].items() if k != "seed"})
    if source == "local" and corpus.source != "stdlib":
        raise ValueError("model.source is local but model.corpus.source is hf: the local teacher trains on the "
                         "offline stdlib corpus; set model.corpus.source: stdlib (or model.source: hf)")
    n_layers = teacher.n_layers if source == "local" else model["n_layers"]
    layers = tuple(range(n_layers)) if model["layers"] == "all" else tuple(sorted(model["layers"]))
    too_deep = [layer for layer in layers if layer >= n_layers]
    if too_deep:
        where = "model.teacher.n_layers" if source == "local" else "model.n_layers"
        raise ValueError(f"model.layers {list(too_deep)} do not exist: the model has {n_layers} blocks "
                         f"(0..{n_layers - 1}, {where})")
    checkpoints: tuple[str, ...] = ()
    if source == "local":
        checkpoints = tuple(checkpoint_label(step, teacher.steps)
                            for step in checkpoint_steps(teacher.steps, teacher.checkpoint_factor))
        unknown = [r for r in model["revisions"] if r not in checkpoints]
        if unknown:
            raise ValueError(f"model.revisions {unknown} are not checkpoints of the local teacher; "
                             f"choose from {', '.join(checkpoints)}")
    label = model["name"].split("/")[-1]
    return LMPlan(source=source, name=model["name"], label=label, revisions=tuple(model["revisions"]),
                  layers=layers, corpus=corpus,
                  stream_seed=model["corpus"]["seed"], teacher=teacher, checkpoints=checkpoints)


def depth_layer(n_layers: int, depth: float) -> int:
    """The block at relative depth `depth` (0.5 → the middle block, 12 of Pythia-410M's 24)."""
    return min(n_layers - 1, int(round(depth * n_layers)))
