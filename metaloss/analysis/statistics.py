"""Comparing training runs over seeds: mean ± std, Welch's t-test, Markdown tables.

A claim such as "Baikal beats cross-entropy at 10% of the data" is a statement about two
distributions of test accuracy over seeds. :func:`compare` summarises each group and tests every
group against a baseline with Welch's unequal-variance t-test, the usual test for a handful of
seeds whose spreads differ.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

__all__ = [
    "COMPARISON_HEADERS",
    "Comparison",
    "SignificanceTest",
    "Summary",
    "compare",
    "comparison_rows",
    "detectable_difference",
    "markdown_table",
    "summarize",
    "welch_t_test",
]


def _invalid(argument: str, expected: str, value) -> ValueError:
    return ValueError(
        f"Invalid value for argument `{argument}`. Expected {expected}. "
        f"Received: {argument}={value!r}"
    )


def _finite_values(argument: str, values, minimum: int) -> list[float]:
    try:
        numbers = [float(v) for v in values]
    except (TypeError, ValueError):
        raise _invalid(argument, "a sequence of numbers", values) from None
    if len(numbers) < minimum or not all(math.isfinite(v) for v in numbers):
        raise _invalid(argument, f"at least {minimum} finite numbers", values)
    return numbers


@dataclass(frozen=True)
class Summary:
    """Mean, sample standard deviation (``n - 1``) and count of one group of runs."""

    mean: float
    std: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.4f} ± {self.std:.4f}"


def summarize(values: Sequence[float]) -> Summary:
    """The :class:`Summary` of ``values`` (std 0 for a single value).

    Example:

    >>> str(summarize([0.5, 0.6, 0.7]))
    '0.6000 ± 0.1000'
    """
    numbers = _finite_values("values", values, 1)
    spread = statistics.stdev(numbers) if len(numbers) > 1 else 0.0
    return Summary(statistics.fmean(numbers), spread, len(numbers))


@dataclass(frozen=True)
class SignificanceTest:
    """Welch's t-test of ``mean(a) - mean(b)``: statistic, degrees of freedom, two-sided p."""

    difference: float
    statistic: float
    degrees_of_freedom: float
    p_value: float
    test: str = "Welch's t-test (two-sided)"


def welch_t_test(a: Sequence[float], b: Sequence[float]) -> SignificanceTest:
    """Welch's unequal-variance t-test of the means of ``a`` and ``b``.

    Formula:
        t = (ā - b̄) / √(s_a²/n_a + s_b²/n_b), with Welch–Satterthwaite degrees of freedom
        ν = (s_a²/n_a + s_b²/n_b)² / ((s_a²/n_a)²/(n_a-1) + (s_b²/n_b)²/(n_b-1)),
        p = 2·P(T_ν > |t|).

    Args:
        a, b: at least two finite values each.

    Returns:
        A :class:`SignificanceTest`. When both groups have zero spread, ``t`` is ±inf (p = 0)
        for different means and NaN (p = 1) for equal ones.

    References:
        Welch, *The generalization of "Student's" problem when several different population
        variances are involved*, Biometrika 34 (1947).
    """
    from scipy import stats

    a = _finite_values("a", a, 2)
    b = _finite_values("b", b, 2)
    difference = statistics.fmean(a) - statistics.fmean(b)
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    if va + vb == 0:
        if difference == 0:
            return SignificanceTest(0.0, math.nan, math.nan, 1.0)
        return SignificanceTest(difference, math.copysign(math.inf, difference), math.nan, 0.0)
    statistic = difference / math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    p_value = 2.0 * float(stats.t.sf(abs(statistic), dof))
    return SignificanceTest(difference, statistic, dof, min(p_value, 1.0))


def detectable_difference(
    std_a: float,
    n_a: int,
    std_b: float,
    n_b: int,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """The smallest difference of means that Welch's test detects with the given power.

    Formula: with ``se = √(s_a²/n_a + s_b²/n_b)``, Welch–Satterthwaite degrees of freedom ``ν``
    and ``t_c = t_{1-α/2, ν}``, the two-sided test rejects with probability
    ``P(T > t_c) + P(T < -t_c)`` for ``T`` noncentral t with ``ν`` degrees of freedom and
    noncentrality ``δ/se``; the result is the ``δ`` where that equals ``power`` (about
    ``(z_{1-α/2} + z_{power}) · se`` for many seeds). The spreads are taken as the true ones, so
    this is a planning estimate of what a comparison of this size could have shown (a
    difference much smaller than it would usually go unnoticed), not a property of the data.

    Args:
        std_a, n_a: sample standard deviation and count of the first group (``n_a >= 2``).
        std_b, n_b: the same for the second group.
        alpha: the test's two-sided level. Defaults to `0.05`.
        power: the probability of detecting the difference. Defaults to `0.8`.

    Returns:
        The detectable difference (0 when both spreads are 0).

    Example:

    >>> round(detectable_difference(0.02, 10, 0.02, 10), 4)
    0.0265

    References:
        Cohen, *Statistical Power Analysis for the Behavioral Sciences* (1988), ch. 2.
    """
    from scipy import optimize, stats

    for name, std in (("std_a", std_a), ("std_b", std_b)):
        if not isinstance(std, int | float) or not math.isfinite(std) or std < 0:
            raise _invalid(name, "a finite number >= 0", std)
    for name, n in (("n_a", n_a), ("n_b", n_b)):
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            raise _invalid(name, "an integer >= 2", n)
    if not isinstance(alpha, int | float) or not 0 < alpha < 1:
        raise _invalid("alpha", "a number in (0, 1)", alpha)
    if not isinstance(power, int | float) or not alpha < power < 1:
        raise _invalid("power", f"a number in (alpha={alpha}, 1)", power)
    va, vb = std_a**2 / n_a, std_b**2 / n_b
    if va + vb == 0:
        return 0.0
    se = math.sqrt(va + vb)
    dof = (va + vb) ** 2 / (va**2 / (n_a - 1) + vb**2 / (n_b - 1))
    critical = float(stats.t.ppf(1 - alpha / 2, dof))

    def shortfall(noncentrality: float) -> float:
        # The far tail is ~0 and SciPy's noncentral t can return NaN there.
        far_tail = float(stats.nct.cdf(-critical, dof, noncentrality))
        detected = float(stats.nct.sf(critical, dof, noncentrality))
        return detected + (far_tail if math.isfinite(far_tail) else 0.0) - power

    upper = critical + float(stats.norm.ppf(power)) + 4.0
    return se * float(optimize.brentq(shortfall, 0.0, upper, xtol=1e-10))


@dataclass(frozen=True)
class Comparison:
    """One group against the baseline: its summary and, for other groups, the t-test."""

    group: str
    summary: Summary
    test: SignificanceTest | None

    def to_dict(self) -> dict:
        return {
            "group": self.group,
            **asdict(self.summary),
            **({"vs_baseline": asdict(self.test)} if self.test is not None else {}),
        }


def compare(groups: Mapping[str, Sequence[float]], baseline: str) -> list[Comparison]:
    """Summarises every group and tests each against ``baseline`` (Welch's t-test).

    Args:
        groups: group name → values (for example test accuracy per seed).
        baseline: the group the others are tested against; it gets no test.

    Returns:
        One :class:`Comparison` per group, in the order of ``groups``. Groups with fewer than
        two values get no test.

    Example:

    >>> rows = compare({"ce": [0.50, 0.52, 0.51], "baikal": [0.55, 0.56, 0.57]}, "ce")
    >>> round(rows[1].test.difference, 4)
    0.05
    """
    if baseline not in groups:
        raise _invalid("baseline", f"one of {list(groups)}", baseline)
    rows = []
    for name, values in groups.items():
        test = None
        if name != baseline and len(values) > 1 and len(groups[baseline]) > 1:
            test = welch_t_test(values, groups[baseline])
        rows.append(Comparison(name, summarize(values), test))
    return rows


def _cell(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value).replace("|", "\\|")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence]) -> str:
    """A GitHub Markdown table; floats get 4 decimals, `None` a dash, ``|`` is escaped."""
    lines = [
        "| " + " | ".join(_cell(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    for row in rows:
        if len(row) != len(headers):
            raise _invalid("rows", f"rows of {len(headers)} cells", row)
        lines.append("| " + " | ".join(_cell(v) for v in row) + " |")
    return "\n".join(lines) + "\n"


def comparison_rows(comparisons: Sequence[Comparison]) -> list[list]:
    """Rows ``[group, n, mean ± std, difference, p]`` of :func:`compare`'s result."""
    return [
        [
            c.group,
            c.summary.n,
            str(c.summary),
            None if c.test is None else f"{c.test.difference:+.4f}",
            None if c.test is None else f"{c.test.p_value:.3g}",
        ]
        for c in comparisons
    ]


COMPARISON_HEADERS = ("group", "seeds", "mean ± std", "Δ vs baseline", "p (Welch)")
