"""Robustness curves: accuracy against the size ε of an adversarial perturbation."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from metaloss.analysis.plots._figure import pyplot as _pyplot
from metaloss.analysis.plots._figure import save as _save

__all__ = ["plot_robustness_curves"]


def plot_robustness_curves(
    curves: Mapping[str, Mapping[float, float]],
    path: str | Path,
    *,
    title: str | None = None,
) -> Path:
    """Accuracy versus ε, one line per model.

    The curves are what :func:`metaloss.analysis.robustness.robust_accuracy` returns.

    Args:
        curves: model label -> ``{ε: accuracy}``.
        path: the PNG to write.
        title: figure title, e.g. the attack. Defaults to `None`.

    Returns:
        The path written.
    """
    if not curves or not all(curves.values()):
        raise ValueError(
            "Invalid value for argument `curves`. Expected at least one non-empty "
            f"{{eps: accuracy}} curve. Received: curves={curves!r}"
        )
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(6, 4))
    for label, curve in curves.items():
        eps = sorted(curve)
        axis.plot(eps, [curve[e] for e in eps], marker="o", label=label)
    axis.set_xlabel("perturbation size ε")
    axis.set_ylabel("accuracy")
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    axis.legend()
    if title:
        axis.set_title(title)
    return _save(fig, path)
