"""EvoMAL's genetic programming: DEAP trees <-> expressions, initialisation, the next generation."""

import random

import numpy as np
import pytest
from deap import gp

from metaloss.losses import SymbolicLoss
from metaloss.losses._expression import parse_expression
from metaloss.search.evomal.trees import (
    PRIMITIVE_SET,
    has_both_terminals,
    initial_population,
    next_generation,
    to_expression,
    to_tree,
)


def height(expression):
    return parse_expression(expression).depth() - 1  # DEAP counts edges, the grammar nodes


def test_trees_and_expressions_convert_both_ways_without_eval(monkeypatch):
    import builtins

    monkeypatch.setattr(builtins, "eval", lambda *a, **k: pytest.fail("eval was called"))
    expression = "add(neg(mul(y, log(f))), div(square(sub(f, y)), -1.0))"
    tree = to_tree(expression)
    names = [node.name if isinstance(node, gp.Primitive) else node.format() for node in tree]
    assert names[:4] == ["add", "neg", "mul", "y"] and names[-1] == "-1.0"
    assert len(tree) == parse_expression(expression).size() and tree.height == 4
    assert to_expression(tree) == expression


def test_compiling_a_tree_is_refused():
    with pytest.raises(RuntimeError, match="never compiled"):
        gp.compile(to_tree("add(y, f)"), PRIMITIVE_SET)(1, 2)


def test_initial_population_is_ramped_half_and_half_reads_y_and_f_and_follows_its_seed():
    state = random.getstate()
    population = initial_population(40, random.Random(3))
    assert random.getstate() == state  # DEAP ran on the caller's generator, not the global one
    assert population == initial_population(40, random.Random(3))
    assert population != initial_population(40, random.Random(4))
    heights = [height(e) for e in population]
    # Heights 2..4, one more where the y/f repair replaced a leaf with an operator.
    assert min(heights) >= 2 and max(heights) <= 5 and len(set(heights)) >= 2
    for expression in population:
        assert has_both_terminals(to_tree(expression)), expression
        loss = SymbolicLoss(expression)  # every member is a valid loss of the zoo
        assert loss.edges == parse_expression(expression).size() - 1


def test_next_generation_keeps_the_elite_limits_height_and_follows_its_seed():
    population = initial_population(20, random.Random(0))
    scored = [(e, float(i)) for i, e in enumerate(population)]
    children = next_generation(scored, random.Random(1), elitism_rate=0.1, max_height=6)
    assert len(children) == 20
    assert children[:2] == [population[19], population[18]]  # the two best, unchanged
    assert all(height(c) <= 7 for c in children)  # 6, plus the repair's one level
    assert all(has_both_terminals(to_tree(c)) for c in children)
    assert children == next_generation(scored, random.Random(1), elitism_rate=0.1, max_height=6)
    assert len(set(children[2:]) - set(population)) >= 5  # crossover and mutation made new ones


def test_tournaments_over_the_whole_population_always_pick_the_best():
    population = initial_population(8, random.Random(0))
    scores = np.linspace(0.0, 1.0, 8)
    scored = list(zip(population, scores, strict=True))
    children = next_generation(
        scored,
        random.Random(2),
        crossover_rate=0.0,
        mutation_rate=0.0,
        elitism_rate=0.0,
        tournament_size=200,  # with replacement: the best is drawn with near certainty
    )
    assert children == [population[-1]] * 8


def test_repair_adds_the_missing_terminal():
    children = next_generation(
        [("square(f)", 1.0)],
        random.Random(0),
        crossover_rate=0.0,
        mutation_rate=0.0,
        elitism_rate=0.0,
    )
    (child,) = children
    assert has_both_terminals(to_tree(child)) and child.startswith("square(")


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"crossover_rate": 1.5}, "crossover_rate"),
        ({"mutation_rate": 0.5}, "mutation_rate"),  # 0.7 + 0.5 > 1
        ({"elitism_rate": -0.1}, "elitism_rate"),
    ],
)
def test_bad_rates_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        next_generation([("add(y, f)", 0.0)], random.Random(0), **kwargs)
