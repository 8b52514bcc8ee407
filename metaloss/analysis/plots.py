"""Matplotlib figures, written straight to PNG (the Agg backend: no display needed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["plot_comparison", "plot_history"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name("partial." + path.name)
    fig.savefig(partial, dpi=120, bbox_inches="tight")
    partial.replace(path)
    return path


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
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def plot_comparison(
    histories: Mapping[str, Mapping[str, Sequence[float]]],
    path: str | Path,
    metric: str = "val_accuracy",
    title: str = "",
) -> Path:
    """One curve per run of ``metric`` over epochs, e.g. validation accuracy per loss.

    Args:
        histories: run label -> history (as :func:`plot_history`).
        path: the PNG to write.
        metric: the history key to plot. Defaults to `"val_accuracy"`.
        title: figure title. Defaults to `""`.

    Returns:
        The path written.
    """
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(6, 4))
    for label, history in histories.items():
        values = history.get(metric)
        if values:
            axis.plot(range(1, len(values) + 1), values, label=label)
    axis.set_xlabel("epoch")
    axis.set_ylabel(metric.replace("_", " "))
    axis.grid(alpha=0.3)
    axis.legend()
    axis.set_title(title)
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)
