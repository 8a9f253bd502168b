"""The `interventions` config keys one run's tables depend on, free of the heavy imports the
interventions themselves need: the Snakefile reads it while it builds the DAG."""

from __future__ import annotations

from dataclasses import dataclass

PEAK_OOD, FINAL = "peak_ood", "final"


@dataclass(frozen=True)
class InterventionConfig:
    """The `interventions` config keys one run's tables depend on (criteria and tests live in across_runs)."""

    checkpoint: str | int = PEAK_OOD
    probe_test_fraction: float = 0.3
    inlp_rounds: int = 5
    steering_strengths: tuple[float, ...] = (-3, -2, -1, 0, 1, 2, 3)
    random_draws: int = 5
    neuron_k: tuple[int, ...] = (0, 8, 16, 32, 64, 128)
    random_k_draws: int = 5
    ablation: str = "mean"
    bootstrap_samples: int = 1000
    seed: int = 0

    @classmethod
    def from_config(cls, section: dict) -> "InterventionConfig":
        fields = cls.__dataclass_fields__
        values = {k: (tuple(v) if isinstance(v, list) else v) for k, v in section.items() if k in fields}
        return cls(**values)
