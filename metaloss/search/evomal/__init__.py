"""EvoMAL-style symbolic loss search: the filters that run before a candidate is trained.

References:
    Raymond, Chen, Xue, Zhang, *Learning Symbolic Model-Agnostic Loss Functions via
    Meta-Learning*, IEEE TPAMI 2023, arXiv 2209.08907.
"""

from metaloss.search.evomal.filters import (
    DEFAULT_FILTER_GRADIENT_STEPS,
    DEFAULT_FILTER_SAMPLE_SIZE,
    GradientEquivalence,
    Rejection,
    rejection_protocol,
)

__all__ = [
    "DEFAULT_FILTER_GRADIENT_STEPS",
    "DEFAULT_FILTER_SAMPLE_SIZE",
    "GradientEquivalence",
    "Rejection",
    "rejection_protocol",
]
