"""The settings of ``metaloss demo``: a TaylorGLO search and a comparison on MNIST-1D.

Shared by the command and by the benchmarks that measured why these settings were chosen.
"""

from __future__ import annotations

__all__ = [
    "DEMO_BUDGET_EPOCHS",
    "DEMO_DATASET",
    "DEMO_EPOCHS",
    "DEMO_FITNESS_SEEDS",
    "DEMO_GENERATIONS",
    "DEMO_MODEL",
    "DEMO_POPULATION",
    "DEMO_REEVALUATE_SEEDS",
    "DEMO_REEVALUATE_TOP",
    "DEMO_SEARCH_SUBSET_FRACTION",
    "DEMO_SEARCH_VALIDATION_SPLIT",
    "DEMO_SEEDS",
    "DEMO_SUBSET_FRACTION",
]

DEMO_DATASET, DEMO_MODEL = "mnist1d", "mlp"
# The TaylorGLO paper's data-utilisation setting: a quarter of the training data, where
# cross-entropy overfits and a metalearned loss has room to regularise.
DEMO_SUBSET_FRACTION = 0.25
# The search measures fitness on 30% of the training split instead of 10%, its training subset
# enlarged to keep the same number of training examples, f' (1 - 0.3) = f (1 - 0.1): over two
# searches this ranked candidates closer to fresh seeds (tools/bench_fitness_noise.py).
DEMO_SEARCH_VALIDATION_SPLIT = 0.3
DEMO_SEARCH_SUBSET_FRACTION = DEMO_SUBSET_FRACTION * (1 - 0.1) / (1 - DEMO_SEARCH_VALIDATION_SPLIT)
DEMO_GENERATIONS = 15
DEMO_POPULATION = 10
DEMO_BUDGET_EPOCHS = 30
# Seeds per candidate: one run's validation accuracy is too noisy to rank candidates
# (tools/bench_fitness_noise.py); a population trains R seeds for about the cost of one.
DEMO_FITNESS_SEEDS = 3
DEMO_REEVALUATE_TOP = 5
DEMO_REEVALUATE_SEEDS = 3
DEMO_EPOCHS = 30
DEMO_SEEDS = 10
