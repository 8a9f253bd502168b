"""What the sae stage builds, derived once from the `sae`, `model` and `synthetic` config sections.

The Snakefile needs the trial names, the (model, ckpt, layer) caches to train on and the snapshot
names before any job runs; `TrainConfig`s are built per job from the same section, so the rule's
params and the trainer can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from interplab.io import stable_seed
from interplab.sae.checkpoint import snapshot_schedule
from interplab.sae.l1 import AdaptiveL1, L1Policy
from interplab.sae.trainer import TrainConfig
from interplab.synthetic import SyntheticConfig
from interplab.teacher.plan import MODEL_SOURCES, lm_plan

SYNTHETIC = "synthetic"
SYNTHETIC_CKPT = "final"


@dataclass(frozen=True)
class SAEPlan:
    model: str  # the {model} path label
    ckpts: tuple[str, ...]
    layers: tuple[int, ...]
    trials: Mapping[str, L1Policy]
    snapshots: tuple[str, ...]  # snapshot names in order, ending with "final"
    synthetic: bool
    snapshot_tokens: Mapping[str, int]  # training tokens seen at each snapshot
    source: str  # cache | stream
    groups: Mapping[str, tuple[int, ...]]  # layer-group name -> its layers: one training job each

    def group_of(self, layer: int) -> str:
        return next(name for name, layers in self.groups.items() if layer in layers)


def layer_groups(layers: tuple[int, ...], size: int) -> dict[str, tuple[int, ...]]:
    """Consecutive chunks of `size` layers, named by their first and last layer (L00_03, or L05)."""
    chunks = [layers[i:i + size] for i in range(0, len(layers), size)]
    return {(f"L{c[0]:02d}" if len(c) == 1 else f"L{c[0]:02d}_{c[-1]:02d}"): tuple(c) for c in chunks}


def l1_policy(trial: Mapping[str, Any]) -> L1Policy:
    adaptive = trial.get("adaptive")
    if adaptive is not None:
        adaptive = AdaptiveL1(**{**adaptive, "bounds": tuple(adaptive["bounds"])})
    return L1Policy(form=trial["l1_form"], coefficient=trial["l1_coefficient"], adaptive=adaptive)


def sae_plan(config: Mapping[str, Any]) -> SAEPlan:
    """Validate the sae section against the model it reads; raise ValueError naming the key."""
    sae, model = config["sae"], config["model"]
    if model["source"] == SYNTHETIC:
        label, ckpts, layers = model["name"].split("/")[-1], (SYNTHETIC_CKPT,), (0,)
    elif model["source"] in MODEL_SOURCES:
        lm = lm_plan(model)
        label, ckpts, layers = lm.label, lm.revisions, lm.layers
    else:
        raise ValueError(f"model.source {model['source']!r} is unknown to the sae stage")
    trials = {name: l1_policy(trial) for name, trial in sae["trials"].items()}
    n_steps = sae["training_tokens"] // sae["batch_size"]
    if n_steps < 1:
        raise ValueError(f"sae.training_tokens ({sae['training_tokens']}) is below one batch "
                         f"(sae.batch_size = {sae['batch_size']})")
    if sae["source"] == "stream" and model["source"] == SYNTHETIC:
        raise ValueError("sae.source 'stream' needs a language model (model.source local or hf); the synthetic "
                         "source is generated into a cache: use sae.source: cache")
    schedule = snapshot_schedule(tuple(sae["snapshots"]), sae["batch_size"], n_steps)
    tokens = {name: step * sae["batch_size"] for name, step in schedule.items()}
    return SAEPlan(label, tuple(ckpts), tuple(layers), trials, tuple(schedule), model["source"] == SYNTHETIC, tokens,
                   sae["source"], layer_groups(tuple(layers), sae["layer_group_size"]))


def synthetic_config(config: Mapping[str, Any]) -> SyntheticConfig:
    return SyntheticConfig(**config["synthetic"], n_tokens=config["cache"]["train_tokens"],
                           heldout_tokens=config["cache"]["heldout_tokens"])


def train_config(sae: Mapping[str, Any], trial: str, d_in: int, model: str, ckpt: str, layer: int,
                 device: str, init_key: tuple = ()) -> TrainConfig:
    """One SAE's TrainConfig. The init seed depends on (model, ckpt, layer) and the data seed on
    (model, ckpt), never on the trial or the layer group: every trial starts from the same weights,
    and every SAE of a (model, ckpt) reads the same token order, whichever group trains it.
    `init_key` separates inits that must differ: dictionaries of different sizes drawn from one seed
    would be nested (the smaller one's start is the larger one's first rows)."""
    where = (sae["seed"], model, ckpt, layer, *init_key)
    return TrainConfig(
        d_in=d_in, d_sae=sae["dict_size"] or sae["expansion"] * d_in, l1=l1_policy(sae["trials"][trial]),
        training_tokens=sae["training_tokens"], snapshot_tokens=tuple(sae["snapshots"]),
        batch_size=sae["batch_size"], lr=sae["lr"], lr_decay_fraction=sae["lr_decay_fraction"], grad_clip=sae["grad_clip"],
        decoder_init_norm=sae["decoder_init_norm"], b_pre_init=sae["b_pre_init"],
        b_pre_init_tokens=sae["b_pre_init_tokens"], normalize_activations=sae["normalize_activations"],
        normalize_tokens=sae["normalize_tokens"], buffer_tokens=sae["buffer_tokens"], log_every=sae["log_every"],
        alive_window_tokens=sae["alive_window_tokens"], resample_every_tokens=sae["resample"]["every_tokens"],
        resample_until=sae["resample"]["until"], ghost_window_tokens=sae["ghost_grads"]["window_tokens"],
        lazy_encoder=sae["lazy_encoder"],
        init_seed=stable_seed("sae-init", *where),
        data_seed=stable_seed("sae-data", sae["seed"], model, ckpt), compile=sae["compile"],
        matmul_precision=sae["matmul_precision"], device=device,
    )
