"""Figures of training runs and searches: curves per epoch, comparisons, search progress."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

from metaloss.analysis.plots._figure import pyplot as _pyplot
from metaloss.analysis.plots._figure import save as _save

__all__ = ["plot_comparison", "plot_history", "plot_search_progress", "plot_seed_values"]


def plot_history(history: Mapping[str, Sequence[float]], path: str | Path, title: str = "") -> Path:
    """Training curves: loss (left) and accuracy (right) per epoch, train and validation.

    Args:
        history: per-epoch lists as in :class:`metaloss.training.FitResult` (``loss``,
            ``accuracy``, ``val_loss``, ``val_accuracy``).
        path: the PNG to write.
        title: figure title. Defaults to `""`.

    Returns:
        The path written.
    """
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            values = history.get(key)
            if values:
                axis.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=label)
        axis.set_xlabel("epoch")
        axis.set_ylabel(metric)
        axis.grid(alpha=0.3)
        axis.legend()
    fig.suptitle(title)
    return _save(fig, path)


def plot_comparison(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    path: str | Path,
    metric: str = "val_accuracy",
    title: str = "",
    *,
    xlabel: str = "epoch",
) -> Path:
    """One curve per run of ``metric`` over epochs, e.g. validation accuracy per loss.

    Args:
        histories: run label -> history (as :func:`plot_history`).
        path: the PNG to write.
        metric: the history key to plot. Defaults to `"val_accuracy"`.
        title: figure title. Defaults to `""`.
        xlabel: what the x axis counts (from 1). Defaults to `"epoch"`.

    Returns:
        The path written.
    """
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(6, 4))
    for label, history in histories.items():
        values = history.get(metric)
        if values:
            axis.plot(range(1, len(values) + 1), values, label=label)
    axis.set_xlabel(xlabel)
    axis.set_ylabel(metric.replace("_", " "))
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title(title)
    return _save(fig, path)


def _generation_score(record: Mapping, kind: str) -> float:
    """A generation's ``<kind>_score``, else ``-<kind>_fitness`` (oracle records), else NaN."""
    score = record.get(f"{kind}_score")
    if score is None and record.get(f"{kind}_fitness") is not None:
        score = 0.0 - float(record[f"{kind}_fitness"])
    return math.nan if score is None else float(score)


def plot_search_progress(
    generations: Sequence[Mapping], path: str | Path, *, title: str | None = None
) -> Path:
    """A search's progress: best and median validation accuracy per generation (left axis),
    and the candidates rejected untrained and failed per generation as stacked bars (right axis).

    Generations are numbered from 1 on the figure (the stored records count from 0), as the live
    progress display does. A generation in which no candidate trained has no point.

    Args:
        generations: the per-generation records of
            :func:`metaloss.search.results.read_search` (``generation``, ``best_score``,
            ``median_score``, ``rejected``, ``failed``), or the oracle's own history records
            (scores are then ``-best_fitness`` and ``-median_fitness``).
        path: the PNG to write.
        title: figure title. Defaults to `None` (no title).

    Returns:
        The path written.

    Example:

    ```python
    record = metaloss.search.results.read_search("runs/search")
    plot_search_progress(record.generations, "runs/search/report/fitness.png")
    ```
    """
    for record in generations:
        if not isinstance(record, Mapping) or "generation" not in record:
            raise ValueError(
                "Invalid value for argument `generations`. Expected a sequence of generation "
                f"records, dicts with a 'generation' key. Received: generations={record!r}"
            )
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(7, 4))
    numbers = [int(g["generation"]) + 1 for g in generations]
    if numbers:
        bars = axis.twinx()
        rejected = [int(g.get("rejected") or 0) for g in generations]
        failed = [int(g.get("failed") or 0) for g in generations]
        bars.bar(numbers, rejected, width=0.4, color="tab:gray", alpha=0.3, label="rejected")
        bars.bar(
            numbers, failed, width=0.4, bottom=rejected, color="tab:red", alpha=0.3, label="failed"
        )
        bars.set_ylabel("candidates rejected / failed")
        # Bars in the lower third, under the accuracy curves.
        bars.set_ylim(0, max(1, *(r + f for r, f in zip(rejected, failed, strict=True))) * 3)
        axis.set_zorder(bars.get_zorder() + 1)  # lines above the bars
        axis.patch.set_visible(False)
        for kind, marker in (("best", "o"), ("median", "s")):
            scores = [_generation_score(g, kind) for g in generations]
            axis.plot(numbers, scores, marker=marker, label=f"{kind} val accuracy")
        handles, labels = axis.get_legend_handles_labels()
        more_handles, more_labels = bars.get_legend_handles_labels()
        axis.legend(
            handles + more_handles,
            labels + more_labels,
            loc="upper left",
            bbox_to_anchor=(0.0, -0.15),
            ncol=4,
            fontsize="small",
            frameon=False,
        )
        axis.set_xticks(numbers)
    else:
        axis.text(0.5, 0.5, "no generation has finished yet", ha="center", va="center")
    axis.set_xlabel("generation")
    axis.set_ylabel("validation accuracy")
    axis.grid(alpha=0.3)
    axis.set_title(title or "")
    return _save(fig, path)


def plot_seed_values(
    groups: Mapping[str, Sequence[float]],
    path: str | Path,
    *,
    ylabel: str = "test accuracy",
    title: str = "",
) -> Path:
    """One column per group: every seed's value as a dot, the mean ± std as a bar.

    Args:
        groups: group label -> one value per seed (e.g. test accuracy per seed).
        path: the PNG to write.
        ylabel: the y-axis label. Defaults to `"test accuracy"`.
        title: figure title. Defaults to `""`.

    Returns:
        The path written.
    """
    import statistics

    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(1.6 + 1.3 * max(len(groups), 1), 4))
    for position, values in enumerate(groups.values()):
        values = [float(v) for v in values]
        if not values:
            continue
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        axis.errorbar(
            position, statistics.fmean(values), yerr=spread, fmt="s", color="black", capsize=6
        )
        jitter = [position + 0.15 + 0.04 * (i % 3) for i in range(len(values))]
        axis.scatter(jitter, values, alpha=0.6, label=None)
    axis.set_xticks(range(len(groups)), list(groups), rotation=20, ha="right")
    axis.set_xlim(-0.6, len(groups) - 0.4)
    axis.set_ylabel(ylabel)
    axis.grid(alpha=0.3, axis="y")
    axis.set_title(title)
    fig.tight_layout()
    return _save(fig, path)
