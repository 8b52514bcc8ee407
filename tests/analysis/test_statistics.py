"""mean ± std, Welch's t-test and the comparison rows, against hand and textbook computations."""

import math

import numpy as np
import pytest
from scipy import stats

from metaloss.analysis.statistics import (
    compare,
    comparison_rows,
    detectable_difference,
    markdown_table,
    summarize,
    welch_t_test,
)


def test_summary_uses_the_sample_standard_deviation():
    # By hand: mean 0.6, deviations ±0.1, sum of squares 0.02 over n-1 = 2 -> std 0.1.
    summary = summarize([0.5, 0.6, 0.7])
    assert summary.mean == pytest.approx(0.6)
    assert summary.std == pytest.approx(0.1)
    assert summary.n == 3
    assert str(summary) == "0.6000 ± 0.1000"
    assert summarize([0.3]).std == 0.0


def test_welch_matches_the_welch_satterthwaite_formulas():
    a = [0.61, 0.64, 0.58, 0.66, 0.63]
    b = [0.55, 0.60, 0.52, 0.58, 0.57, 0.50]
    # Independent computation: SciPy's own Welch test (t and p) and the degrees of freedom by
    # the Welch–Satterthwaite formula with NumPy.
    reference = stats.ttest_ind(a, b, equal_var=False)
    va, vb = np.var(a, ddof=1) / len(a), np.var(b, ddof=1) / len(b)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    result = welch_t_test(a, b)
    assert result.statistic == pytest.approx(reference.statistic, rel=1e-10)
    assert result.degrees_of_freedom == pytest.approx(dof, rel=1e-10)
    assert result.p_value == pytest.approx(reference.pvalue, rel=1e-8)
    assert result.difference == pytest.approx(np.mean(a) - np.mean(b))
    assert 0 < result.p_value < 0.05


def test_welch_textbook_value():
    # By hand: means 2 and 4, each s² = 10/4 = 2.5 so s²/n = 0.5; t = -2/√1 = -2 exactly,
    # ν = 1 / (0.25/4 + 0.25/4) = 8; two-sided p = 2·P(T_8 > 2) = 0.08052 (t tables).
    result = welch_t_test([0.0, 1.0, 2.0, 3.0, 4.0], [2.0, 3.0, 4.0, 5.0, 6.0])
    assert result.statistic == pytest.approx(-2.0)
    assert result.degrees_of_freedom == pytest.approx(8.0)
    assert result.p_value == pytest.approx(0.08052, abs=5e-5)


def test_welch_with_no_spread():
    assert welch_t_test([0.0, 0.0], [0.0, 0.0]).p_value == 1.0
    result = welch_t_test([1.0, 1.0], [0.0, 0.0])
    assert result.p_value == 0.0 and result.statistic == math.inf


def test_one_group_without_spread_is_still_tested():
    result = welch_t_test([0.0, 0.0, 0.0], [0.2, 0.3, 0.25])
    assert result.p_value < 0.05 and result.difference == pytest.approx(-0.25)


@pytest.mark.parametrize(
    ("a", "b", "argument"),
    [([1.0], [1.0, 2.0], "a"), ([1.0, 2.0], [1.0, float("nan")], "b"), (["x", 1], [1, 2], "a")],
)
def test_welch_rejects_bad_groups(a, b, argument):
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        welch_t_test(a, b)


def test_compare_tests_every_group_against_the_baseline():
    rows = compare({"ce": [0.50, 0.52, 0.51], "baikal": [0.55, 0.56, 0.57], "one": [0.4]}, "ce")
    assert [r.group for r in rows] == ["ce", "baikal", "one"]
    assert rows[0].test is None and rows[2].test is None
    assert rows[1].test.difference == pytest.approx(0.05)
    cells = comparison_rows(rows)
    assert cells[1][:4] == ["baikal", 3, "0.5600 ± 0.0100", "+0.0500"]
    assert rows[1].to_dict()["vs_baseline"]["p_value"] == rows[1].test.p_value
    with pytest.raises(ValueError, match="argument `baseline`"):
        compare({"ce": [0.5, 0.6]}, "mse")


def test_markdown_table():
    text = markdown_table(("loss", "acc", "p"), [("a|b", 0.123456, None)])
    assert text.splitlines() == ["| loss | acc | p |", "|---|---|---|", "| a\\|b | 0.1235 | – |"]
    with pytest.raises(ValueError, match="argument `rows`"):
        markdown_table(("a", "b"), [(1,)])


def test_detectable_difference_is_detected_with_the_stated_power_by_simulation():
    """Monte Carlo: Welch's test (SciPy's) at the detectable difference rejects ~80% of the time."""
    std_a, n_a, std_b, n_b = 0.02, 6, 0.035, 8
    delta = detectable_difference(std_a, n_a, std_b, n_b)
    rng = np.random.default_rng(0)
    trials = 20_000
    a = rng.normal(delta, std_a, size=(trials, n_a))
    b = rng.normal(0.0, std_b, size=(trials, n_b))
    rejected = stats.ttest_ind(a, b, axis=1, equal_var=False).pvalue < 0.05
    # Welch's degrees of freedom are themselves estimated, so the rate is close, not exact.
    assert abs(rejected.mean() - 0.8) < 0.02


def test_detectable_difference_approaches_the_normal_formula_for_many_seeds():
    # (z_0.975 + z_0.8) · σ · √(2/n) = (1.95996 + 0.84162) · √(2/2000)
    expected = (1.959964 + 0.841621) * (2 / 2000) ** 0.5
    assert detectable_difference(1.0, 2000, 1.0, 2000) == pytest.approx(expected, rel=2e-3)
    assert detectable_difference(0.0, 5, 0.0, 5) == 0.0
    # Fewer seeds, or a higher power, need a larger difference.
    assert detectable_difference(1.0, 5, 1.0, 5) > detectable_difference(1.0, 10, 1.0, 10)
    assert detectable_difference(1.0, 5, 1.0, 5, power=0.9) > detectable_difference(1.0, 5, 1.0, 5)


@pytest.mark.parametrize(
    ("arguments", "name"),
    [((0.1, 1, 0.1, 5), "n_a"), ((-0.1, 5, 0.1, 5), "std_a"), ((0.1, 5, math.nan, 5), "std_b")],
)
def test_detectable_difference_rejects_bad_arguments(arguments, name):
    with pytest.raises(ValueError, match=f"argument `{name}`"):
        detectable_difference(*arguments)
