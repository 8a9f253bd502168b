"""Sparse autoencoders of Experiment 2: model, L1 policies, fused trainer, snapshots, export."""

from interplab.sae.export import load_sae
from interplab.sae.l1 import AdaptiveL1, L1Policy
from interplab.sae.model import SparseAutoencoder
from interplab.sae.trainer import SAETrainer, TrainConfig

__all__ = ["AdaptiveL1", "L1Policy", "SAETrainer", "SparseAutoencoder", "TrainConfig", "load_sae"]
