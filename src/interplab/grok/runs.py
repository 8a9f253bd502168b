"""What a grokking run is: its regime, task setup and schedule, built from the config's `grok` section.

Run names are `{regime}-n{n_train}-s{seed}` for Camelyon17 and `modadd-{variant}-s{seed}` for the
modular-addition control. Runs with the same seed share the initialisation (before init
scaling), the training subsample and the batch order, so regimes differ only by their recipe.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from interplab.grok.checkpoints import checkpoint_schedule
from interplab.grok.data import SplitConfig
from interplab.io import stable_seed

CAMELYON = "camelyon17"
MODULAR = "modular_addition"


@dataclass(frozen=True)
class Regime:
    """An optimisation recipe: AdamW settings, Omnigrok init scale, and whether Grokfast filters gradients."""

    name: str
    lr: float
    weight_decay: float
    init_scale: float = 1.0
    grokfast: bool = False
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass(frozen=True)
class CamelyonSetup:
    data: SplitConfig
    n_train: int
    batch_size: int


@dataclass(frozen=True)
class ModularSetup:
    p: int = 113
    train_fraction: float = 0.3
    d_model: int = 128
    n_heads: int = 4
    d_mlp: int = 512


@dataclass(frozen=True)
class RunSpec:
    name: str
    task: str
    regime: Regime
    seed: int
    epochs: int
    checkpoints: tuple[int, ...]
    eval_every: int
    grokfast_alpha: float
    grokfast_lamb: float
    setup: CamelyonSetup | ModularSetup

    @property
    def heldout_split(self) -> str:
        """The split whose accuracy the study is about: the OOD hospital, or the held-out pairs."""
        return "ood" if self.task == CAMELYON else "test"


def spec_to_dict(spec: RunSpec) -> dict:
    return dataclasses.asdict(spec)


def spec_from_dict(d: Mapping[str, Any]) -> RunSpec:
    """Inverse of spec_to_dict (used to rebuild a model from a run directory's manifest)."""
    setup = d["setup"]
    if d["task"] == CAMELYON:
        data = SplitConfig(**{**setup["data"], "train_hospitals": tuple(setup["data"]["train_hospitals"])})
        setup_obj: CamelyonSetup | ModularSetup = CamelyonSetup(data=data, n_train=setup["n_train"],
                                                                batch_size=setup["batch_size"])
    else:
        setup_obj = ModularSetup(**setup)
    regime = Regime(**{**d["regime"], "betas": tuple(d["regime"]["betas"])})
    return RunSpec(**{**d, "regime": regime, "setup": setup_obj, "checkpoints": tuple(d["checkpoints"])})


def data_root(section: Mapping[str, Any], fixture_root: str) -> str:
    """Where Camelyon17 is read from: the DAG-built fixture, or the configured download."""
    return fixture_root if section["data"]["source"] == "fixture" else section["data"]["root_dir"]


def camelyon_runs(section: Mapping[str, Any], fixture_root: str) -> dict[str, RunSpec]:
    """Every Camelyon17 run the config lists, keyed by run name."""
    data = section["data"]
    split = SplitConfig(root_dir=data_root(section, fixture_root), train_hospitals=tuple(data["train_hospitals"]),
                        ood_hospital=data["ood_hospital"], max_eval=data["max_eval"])
    checkpoints = checkpoint_schedule(section["epochs"], **section["checkpoints"])
    runs = {}
    for entry in section["runs"]:
        regime = Regime(name=entry["regime"], **section["regimes"][entry["regime"]])
        for seed in entry["seeds"]:
            name = f"{regime.name}-n{entry['n_train']}-s{seed}"
            runs[name] = RunSpec(
                name=name, task=CAMELYON, regime=regime, seed=seed, epochs=section["epochs"],
                checkpoints=checkpoints, eval_every=1, grokfast_alpha=section["grokfast"]["alpha"],
                grokfast_lamb=section["grokfast"]["lamb"],
                setup=CamelyonSetup(data=split, n_train=entry["n_train"], batch_size=section["batch_size"]),
            )
    return runs


def modular_runs(section: Mapping[str, Any]) -> dict[str, RunSpec]:
    """The modular-addition control: one run per (variant, seed); variant `grokfast` filters gradients."""
    mod = section["modular"]
    setup = ModularSetup(p=mod["p"], train_fraction=mod["train_fraction"], d_model=mod["d_model"],
                         n_heads=mod["n_heads"], d_mlp=mod["d_mlp"])
    checkpoints = checkpoint_schedule(mod["steps"], **mod["checkpoints"])
    runs = {}
    for variant in mod["variants"]:
        regime = Regime(name=variant, lr=mod["lr"], weight_decay=mod["weight_decay"], grokfast=variant == "grokfast",
                        betas=tuple(mod["betas"]))
        for seed in mod["seeds"]:
            name = f"modadd-{variant}-s{seed}"
            runs[name] = RunSpec(
                name=name, task=MODULAR, regime=regime, seed=seed, epochs=mod["steps"], checkpoints=checkpoints,
                eval_every=mod["eval_every"], grokfast_alpha=section["grokfast"]["alpha"],
                grokfast_lamb=section["grokfast"]["lamb"], setup=setup,
            )
    return runs
