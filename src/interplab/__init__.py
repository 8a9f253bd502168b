"""interplab: a reproducible mechanistic-interpretability workflow (toy KD theory, SAEs, grokking)."""

__version__ = "0.1.0"
