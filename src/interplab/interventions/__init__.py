"""The four interventions of the grokking study (docs/science.md §4), each with its control.

All act on feature matrices (numpy, [n_images, d]) with labels, so they are testable on planted
data and independent of how the features were extracted: probes.py (standardised logistic-
regression probes), erasure.py (probe row space, INLP, LEACE, random-subspace control),
steering.py (LDA-1 direction, dose-response with a random-direction control), neurons.py
(selectivity ranking, top-K mean ablation with random-K and tumour-K controls), stats.py (tests
across runs and what sample size significance would need).
"""
