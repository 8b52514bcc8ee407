"""EvoMAL-style symbolic loss search: genetic programming over expressions, and its filters.

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
from metaloss.search.evomal.trees import (
    PRIMITIVE_SET,
    has_both_terminals,
    initial_population,
    next_generation,
    to_expression,
    to_tree,
)

__all__ = [
    "DEFAULT_FILTER_GRADIENT_STEPS",
    "DEFAULT_FILTER_SAMPLE_SIZE",
    "PRIMITIVE_SET",
    "GradientEquivalence",
    "Rejection",
    "has_both_terminals",
    "initial_population",
    "next_generation",
    "rejection_protocol",
    "to_expression",
    "to_tree",
]
