"""Grokking for under-sampled Camelyon17 (docs/science.md §4): data, models, Grokfast, resumable training.

Modules: fixture (synthetic five-hospital WILDS layout), data (the wilds loader, hospital splits,
seeded subsampling), models (ResNet-18, the modular-addition transformer, init scaling, norms),
grokfast (EMA gradient filter), runs (run specs from config), tasks (batch sources), train
(resumable checkpointed loop), checkpoints (run-directory layout and loading), features
(per-block features for interventions), analysis (peak OOD and grokked/ungrokked/neither).

For later stages: `checkpoints.checkpoint_epochs(run_dir)`, `checkpoints.load_model(run_dir, epoch)`
and `features.block_features(run_dir, epoch, split)`; the run-directory layout is documented in
checkpoints.py.
"""
