"""EvoMAL's genetic programming over loss expressions, with DEAP's trees and operators.

The trees are DEAP ``PrimitiveTree`` s over the primitive set of
:class:`~metaloss.losses.SymbolicLoss` (terminals ``y``, ``f`` and the constants ±1, EvoMAL's).
They are turned into expression strings with DEAP's ``str`` and back from the grammar's parse
tree, never with ``gp.compile`` or ``PrimitiveTree.from_string`` (both call ``eval``); the
primitives' functions exist only to satisfy DEAP and refuse to run.

Every random choice goes through a ``random.Random`` of the caller (DEAP's operators use the
global ``random`` module: it is swapped for the caller's state around each call and restored),
so a population is a function of its seed.

Settings from EvoMAL's public configuration (MNIST): ramped half-and-half initialisation with
heights 2–4, crossover rate 0.7, mutation rate 0.25 (uniform subtree mutation with
half-and-half subtrees of height 0–2), tournaments of 4, a maximum height of 10; elitism 0.05
(set in that configuration; the published code does not apply it, here the best
``ceil(0.05·N)`` are kept).

References:
    Raymond, Chen, Xue, Zhang, *Learning Symbolic Model-Agnostic Loss Functions via
    Meta-Learning*, IEEE TPAMI 2023, arXiv 2209.08907.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import random
from collections.abc import Sequence

from deap import gp

from metaloss.losses._base import invalid_value
from metaloss.losses._expression import PRIMITIVES, Node, format_expression, parse_expression

__all__ = [
    "CONSTANTS",
    "DEFAULT_CROSSOVER_RATE",
    "DEFAULT_ELITISM_RATE",
    "DEFAULT_INIT_HEIGHTS",
    "DEFAULT_MAX_HEIGHT",
    "DEFAULT_MUTATION_RATE",
    "DEFAULT_TOURNAMENT_SIZE",
    "PRIMITIVE_SET",
    "has_both_terminals",
    "initial_population",
    "next_generation",
    "to_expression",
    "to_tree",
]

#: The constant terminals of EvoMAL's set.
CONSTANTS = (1.0, -1.0)
DEFAULT_INIT_HEIGHTS = (2, 4)
DEFAULT_CROSSOVER_RATE = 0.7
DEFAULT_MUTATION_RATE = 0.25
DEFAULT_ELITISM_RATE = 0.05
DEFAULT_TOURNAMENT_SIZE = 4
DEFAULT_MAX_HEIGHT = 10
# EvoMAL lists its arithmetic primitives first and picks the constraint's operator among them.
_BINARY_ARITHMETIC = ("add", "sub", "mul", "div")


def _not_compiled(name: str):
    def primitive(*args):
        raise RuntimeError(f"{name}: symbolic loss trees are parsed, never compiled")

    primitive.__name__ = name
    return primitive


def _primitive_set() -> gp.PrimitiveSet:
    primitive_set = gp.PrimitiveSet("evomal", 2)
    primitive_set.renameArguments(ARG0="y", ARG1="f")
    for name in _BINARY_ARITHMETIC + tuple(n for n in PRIMITIVES if n not in _BINARY_ARITHMETIC):
        primitive_set.addPrimitive(_not_compiled(name), PRIMITIVES[name], name=name)
    for constant in CONSTANTS:
        primitive_set.addTerminal(constant)
    return primitive_set


#: DEAP's primitive set of the search: SymbolicLoss's primitives, ``y``, ``f`` and ±1.
PRIMITIVE_SET = _primitive_set()


@contextlib.contextmanager
def _global_random(rng: random.Random):
    """Runs DEAP (which draws from the global ``random``) on ``rng``'s state."""
    saved = random.getstate()
    random.setstate(rng.getstate())
    try:
        yield
    finally:
        rng.setstate(random.getstate())
        random.setstate(saved)


def to_tree(expression: str | Node) -> gp.PrimitiveTree:
    """The DEAP tree of an expression (parsed by the grammar; literals become constants)."""
    node = expression if isinstance(expression, Node) else parse_expression(expression)
    nodes = []

    def visit(current: Node) -> None:
        if current.name == "const":
            nodes.append(gp.Terminal(float(current.value), False, object))
        else:  # a primitive or one of the terminals y, f
            nodes.append(PRIMITIVE_SET.mapping[current.name])
        for child in current.children:
            visit(child)

    visit(node)
    return gp.PrimitiveTree(nodes)


def to_expression(tree: gp.PrimitiveTree) -> str:
    """The canonical expression text of a DEAP tree (checked by the grammar)."""
    return format_expression(parse_expression(str(tree)))


def has_both_terminals(tree: gp.PrimitiveTree) -> bool:
    """EvoMAL's constraint: the tree reads both the label ``y`` and the prediction ``f``."""
    names = {node.value for node in tree if isinstance(node, gp.Terminal)}  # y, f or a number
    return {"y", "f"} <= names


def _constrained(tree: gp.PrimitiveTree, rng: random.Random) -> gp.PrimitiveTree:
    """EvoMAL's repair: a tree missing ``y`` or ``f`` gets one of its terminals replaced by a
    random binary arithmetic operator of ``y`` and ``f`` (in random order)."""
    if has_both_terminals(tree):
        return tree
    tree = copy.deepcopy(tree)
    operator = PRIMITIVE_SET.mapping[rng.choice(_BINARY_ARITHMETIC)]
    arguments = [PRIMITIVE_SET.mapping["y"], PRIMITIVE_SET.mapping["f"]]
    rng.shuffle(arguments)
    terminals = [i for i, node in enumerate(tree) if isinstance(node, gp.Terminal)]
    index = rng.choice(terminals)
    tree[index : index + 1] = [operator, *arguments]
    return tree


def _check_rate(argument: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise invalid_value(argument, "a number in [0, 1]", value)
    return float(value)


def initial_population(
    size: int,
    rng: random.Random,
    *,
    heights: tuple[int, int] = DEFAULT_INIT_HEIGHTS,
) -> list[str]:
    """``size`` expressions by ramped half-and-half, each repaired to read ``y`` and ``f``."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise invalid_value("size", "a positive integer", size)
    low, high = heights
    population = []
    for _ in range(size):
        with _global_random(rng):
            tree = gp.PrimitiveTree(gp.genHalfAndHalf(PRIMITIVE_SET, low, high))
        population.append(to_expression(_constrained(tree, rng)))
    return population


def _tournament(scored: Sequence[tuple[str, float]], size: int, rng: random.Random) -> str:
    """The best of ``size`` entrants drawn with replacement (higher scores are better)."""
    entrants = [scored[rng.randrange(len(scored))] for _ in range(size)]
    return max(entrants, key=lambda entry: entry[1])[0]


def next_generation(
    scored: Sequence[tuple[str, float]],
    rng: random.Random,
    *,
    size: int | None = None,
    crossover_rate: float = DEFAULT_CROSSOVER_RATE,
    mutation_rate: float = DEFAULT_MUTATION_RATE,
    elitism_rate: float = DEFAULT_ELITISM_RATE,
    tournament_size: int = DEFAULT_TOURNAMENT_SIZE,
    max_height: int = DEFAULT_MAX_HEIGHT,
) -> list[str]:
    """The next population from the scored one (EvoMAL's ``varOr`` step, with elitism).

    The best ``ceil(elitism_rate · size)`` expressions pass unchanged. Every other child starts
    from a tournament winner and, by one draw, is crossed over (one-point) with another winner
    (``crossover_rate``), mutated (uniform subtree mutation, ``mutation_rate``) or copied; a
    child taller than ``max_height`` is replaced by its parent, and every child is repaired to
    read ``y`` and ``f``.

    Args:
        scored: ``(expression, score)`` pairs, higher scores better (rejected or failed
            candidates score ``-inf``).
        rng: the source of every random choice.
        size: the new population's size. Defaults to `None`: ``len(scored)``.

    Returns:
        The expressions of the next generation, elites first.
    """
    if not scored:
        raise invalid_value("scored", "at least one (expression, score) pair", scored)
    size = len(scored) if size is None else size
    crossover_rate = _check_rate("crossover_rate", crossover_rate)
    mutation_rate = _check_rate("mutation_rate", mutation_rate)
    elitism_rate = _check_rate("elitism_rate", elitism_rate)
    if crossover_rate + mutation_rate > 1:
        raise invalid_value(
            "mutation_rate", f"at most 1 - crossover_rate = {1 - crossover_rate:g}", mutation_rate
        )
    ranked = sorted(scored, key=lambda entry: entry[1], reverse=True)
    elites = [expression for expression, _ in ranked[: math.ceil(elitism_rate * size)]]
    mutation_subtree = functools.partial(gp.genHalfAndHalf, pset=PRIMITIVE_SET, min_=0, max_=2)
    children = []
    while len(elites) + len(children) < size:
        parent = to_tree(_tournament(scored, tournament_size, rng))
        draw = rng.random()
        child = copy.deepcopy(parent)
        with _global_random(rng):
            if draw < crossover_rate:
                other = to_tree(_tournament(scored, tournament_size, rng))
                child, _ = gp.cxOnePoint(child, other)
            elif draw < crossover_rate + mutation_rate:
                (child,) = gp.mutUniform(child, mutation_subtree, PRIMITIVE_SET)
        if child.height > max_height:
            child = parent
        children.append(to_expression(_constrained(child, rng)))
    return elites + children
