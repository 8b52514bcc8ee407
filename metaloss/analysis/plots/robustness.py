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
    bands: Mapping[str, Mapping[float, float]] | None = None,
) -> Path:
    """Accuracy versus ε, one line per model.

    The curves are what :func:`metaloss.analysis.robustness.robust_accuracy` returns.

    Args:
        curves: model label -> ``{ε: accuracy}``.
        path: the PNG to write.
        title: figure title, e.g. the attack. Defaults to `None`.
        bands: label -> ``{ε: half-width}``: a shaded band ``accuracy ± half-width`` around that
            curve, e.g. the standard deviation over seeds of a mean curve. Each label must be a
            curve's, with that curve's ε values. Defaults to `None` (no bands).

    Returns:
        The path written.
    """
    if not curves or not all(curves.values()):
        raise ValueError(
            "Invalid value for argument `curves`. Expected at least one non-empty "
            f"{{eps: accuracy}} curve. Received: curves={curves!r}"
        )
    bands = dict(bands or {})
    for label, band in bands.items():
        if label not in curves or set(band) != set(curves[label]):
            raise ValueError(
                "Invalid value for argument `bands`. Expected half-widths at the ε values of "
                f"one of the curves {list(curves)}. Received: bands[{label!r}]={band!r}"
            )
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(6, 4))
    for label, curve in curves.items():
        eps = sorted(curve)
        mean = [curve[e] for e in eps]
        (line,) = axis.plot(eps, mean, marker="o", label=label)
        if label in bands:
            half = [bands[label][e] for e in eps]
            axis.fill_between(
                eps,
                [m - h for m, h in zip(mean, half, strict=True)],
                [m + h for m, h in zip(mean, half, strict=True)],
                color=line.get_color(),
                alpha=0.2,
                linewidth=0,
            )
    axis.set_xlabel("perturbation size ε")
    axis.set_ylabel("accuracy")
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    axis.legend()
    if title:
        axis.set_title(title)
    return _save(fig, path)
