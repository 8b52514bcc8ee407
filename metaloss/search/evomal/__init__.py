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
from metaloss.search.evomal.local_search import LocalSearch, tune_weights
from metaloss.search.evomal.oracle import EvoMALOracle
from metaloss.search.evomal.trees import (
    PRIMITIVE_SET,
    has_both_terminals,
    initial_population,
    next_generation,
    to_expression,
    to_tree,
)
from metaloss.search.evomal.tuner import EvoMALSearch, ExpressionFilters, SymbolicSpace

__all__ = [
    "DEFAULT_FILTER_GRADIENT_STEPS",
    "DEFAULT_FILTER_SAMPLE_SIZE",
    "PRIMITIVE_SET",
    "EvoMALOracle",
    "EvoMALSearch",
    "ExpressionFilters",
    "GradientEquivalence",
    "LocalSearch",
    "Rejection",
    "SymbolicSpace",
    "has_both_terminals",
    "initial_population",
    "next_generation",
    "rejection_protocol",
    "to_expression",
    "to_tree",
    "tune_weights",
]
