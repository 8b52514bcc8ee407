"""The report of a dynamical-loss experiment: λ_max bursts in words and tables, width summaries.

A cyclic dynamical loss is compared with cross-entropy at several network widths; each width is a
comparison section (:func:`metaloss.experiments.comparison_section`). These helpers describe the
Hessian bursts of the tracked runs, summarise the sweep over widths, keep long per-step histories
small, and switch Keras to float64 for experiments that train in it.

References:
    Ruiz-Garcia, Zhang, Schoenholz, Liu, *Tilting the playing field: Dynamical loss functions for
    machine learning*, arXiv 2102.03793 (ICML 2021).
"""

from __future__ import annotations

import contextlib
import math
import statistics

__all__ = [
    "MAX_HISTORY_POINTS",
    "describe_tracked",
    "float_precision",
    "summary_row",
    "summary_section",
    "thin_histories",
]

MAX_HISTORY_POINTS = 1000  # per-step histories in results.json are thinned to this many points


def _mean(values) -> float:
    values = list(values)
    return statistics.fmean(values) if values else math.nan


def summary_section(rows: list[dict], *, figures: list[str], lead: str) -> dict:
    """The closing section of a width sweep: per width (rows from :func:`summary_row`), the
    baseline against the best dynamical arm, with ``lead`` above the table."""
    from metaloss.analysis.statistics import markdown_table

    headers = (
        "width", "parameters", "cross-entropy test", "best cyclic arm", "its test", "Δ test",
        "p (Welch)", "cross-entropy train", "cyclic train",
    )  # fmt: skip
    table = markdown_table(
        headers,
        [
            [
                r["width"], r["parameters"], r["baseline_test"], r["best_arm"], r["best_test"],
                r["difference"], r["p_value"], r["baseline_train"], r["best_train"],
            ]
            for r in rows
        ],
    )  # fmt: skip
    markdown = "\n".join(
        [
            "### Summary over widths",
            "",
            lead,
            "",
            table,
            "",
            *[f"![cyclic class weights Γ_i(t)]({name})\n" for name in figures],
        ]
    )
    return {"title": "Summary over widths", "rows": rows, "figures": figures, "markdown": markdown}


def summary_row(
    section: dict, width: int, parameters: int, *, baseline: str = "cross_entropy"
) -> dict:
    """The best non-baseline arm of a width's comparison section (by mean test accuracy)
    against ``baseline``, with the mean final training accuracy of both."""
    by_group = {c["group"]: c for c in section["comparisons"]}
    arms = [g for g in by_group if g != baseline]
    best = max(arms, key=lambda g: by_group[g]["mean"])
    test = by_group[best].get("vs_baseline") or {}
    train = {g: _mean(r["train_accuracy"] for r in section["runs"][g]) for g in (baseline, best)}
    return {
        "width": width,
        "parameters": parameters,
        "baseline_test": by_group[baseline]["mean"],
        "best_arm": best,
        "best_test": by_group[best]["mean"],
        "difference": test.get("difference"),
        "p_value": test.get("p_value"),
        "baseline_train": train[baseline],
        "best_train": train[best],
    }


@contextlib.contextmanager
def float_precision(float64: bool):
    """Keras's floatx and dtype policy at float64 inside the block (nothing when False)."""
    import keras

    if not float64:
        yield
        return
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


def describe_tracked(arm: str, seed: int, periods: list[dict], edge: float) -> list[str]:
    """Markdown: the λ_max bursts of one tracked run in words, then its per-period table.

    Args:
        arm: the arm's label.
        seed: the run's seed.
        periods: :func:`metaloss.analysis.peaks_per_period` of its Hessian history.
        edge: the stability limit ``2/η``.

    Returns:
        Two Markdown blocks: a sentence, and a table with a row per period.
    """
    from metaloss.analysis.statistics import markdown_table

    above = [row for row in periods if row["above_edge"]]
    peak = max(periods, key=lambda row: row["lambda_max"])
    words = (
        f"**{arm}, seed {seed}**: λ_max went above 2/η = {edge:g} in {len(above)} of "
        f"{len(periods)} periods"
    )
    if above:
        positions = ", ".join(
            f"{row['lambda_max']:.3g} at step {row['step']} ({row['fraction']:.0%} of period "
            f"{row['period']})"
            for row in above
        )
        words += f": {positions}"
    words += f". Its largest value was {peak['lambda_max']:.3g} (step {peak['step']})"
    if "ntk_max" in peak:
        ntk = [row["ntk_max"] for row in periods]
        words += f"; the NTK's λ_max went from {ntk[0]:.3g} (period 0) to {ntk[-1]:.3g}"
    rows = [
        [
            row["period"],
            "–" if row["emphasised_class"] is None else row["emphasised_class"],
            row["lambda_max"], row["step"], f"{row['fraction']:.0%}",
            "yes" if row["above_edge"] else "no", row.get("ntk_max"),
        ]
        for row in periods
    ]  # fmt: skip
    headers = ("period", "emphasised class", "max λ_max", "at step", "in period", "> 2/η",
               "max NTK λ_max")  # fmt: skip
    return [words + ".", markdown_table(headers, rows)]


def thin_histories(section: dict, max_points: int = MAX_HISTORY_POINTS) -> None:
    """Keeps at most ``max_points`` of each run's per-step history in a comparison section
    (every k-th point, ``k`` recorded as the run's ``history_stride``)."""
    for runs in section["runs"].values():
        for run in runs:
            length = max((len(v) for v in run["history"].values()), default=0)
            stride = max(1, math.ceil(length / max_points))
            run["history"] = {k: v[::stride] for k, v in run["history"].items()}
            run["history_stride"] = stride
