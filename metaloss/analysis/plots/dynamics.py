"""Figures of training dynamics: attraction over epochs, Hessian and NTK spectra."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from metaloss.analysis.plots._figure import pyplot as _pyplot
from metaloss.analysis.plots._figure import save as _save

__all__ = [
    "plot_attraction",
    "plot_attraction_by_confidence",
    "plot_eigenvalue_trajectories",
    "plot_hessian_density",
    "plot_ntk_spectrum",
]


def _mapping(argument: str, value, expected: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise ValueError(
            f"Invalid value for argument `{argument}`. Expected {expected}. "
            f"Received: {argument}={value!r}"
        )
    return value


def plot_attraction(summaries: Mapping[str, Mapping], path: str | Path, *, title: str = "") -> Path:
    """Attraction over epochs, one line per loss: the fractions of samples pushed away.

    Left, among the correctly classified samples (the zero-training-error regime in which
    cross-entropy never pushes a sample away and regularizing losses do); right, among all the
    tracked samples. The training accuracy of the tracked samples is drawn dotted on the left.

    Args:
        summaries: label -> :meth:`metaloss.analysis.AttractionTracker.summary` (keys
            ``epoch``, ``pushed_away_correct``, ``pushed_away``, ``accuracy``).
        path: the PNG to write.
        title: figure title. Defaults to `""`.

    Returns:
        The path written.

    Example:

    ```python
    plot_attraction({"cross-entropy": ce.summary(), "TaylorGLO": tg.summary()}, "attr.png")
    ```

    References:
        Gonzalez & Miikkulainen, *Effective Regularization Through Loss-Function Metalearning*,
        arXiv:2010.00788.
    """
    plt = _pyplot()
    fig, (correct, every) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for index, (label, summary) in enumerate(summaries.items()):
        summary = _mapping("summaries", summary, "AttractionTracker summaries")
        color = f"C{index % 10}"
        epochs = summary.get("epoch", [])
        correct.plot(epochs, summary.get("pushed_away_correct", []), color=color, label=label)
        correct.plot(
            epochs, summary.get("accuracy", []), color=color, linestyle=":", linewidth=1,
            label=f"{label}: accuracy",
        )  # fmt: skip
        every.plot(epochs, summary.get("pushed_away", []), color=color, label=label)
    correct.set_ylabel("fraction pushed away (dH/dt > 0)")
    correct.set_title("correctly classified samples", fontsize="medium")
    every.set_title("all tracked samples", fontsize="medium")
    for axis in (correct, every):
        axis.set_xlabel("epoch")
        axis.set_ylim(-0.02, 1.02)
        axis.grid(alpha=0.3)
        if summaries:
            axis.legend(fontsize="small")
    fig.suptitle(title)
    return _save(fig, path)


def plot_attraction_by_confidence(
    named: Mapping[str, tuple[Sequence[float], Sequence[bool]]],
    path: str | Path,
    *,
    bins: int = 10,
    title: str = "",
) -> Path:
    """The fraction of samples each loss pushes away, against the true class's probability.

    Samples are binned by ``p_target`` (equal-width bins on ``[0, 1]``); empty bins have no
    point. Cross-entropy's curve is zero wherever samples are correctly classified; a
    regularizing loss rises near ``p_target = 1``.

    Args:
        named: label -> ``(p_target, pushed)``: per-sample probabilities of the true class and
            whether the loss pushes the sample away (:func:`metaloss.analysis.pushed_away`).
        path: the PNG to write.
        bins: number of bins. Defaults to `10`.
        title: figure title. Defaults to `""`.

    Returns:
        The path written.
    """
    edges = np.linspace(0.0, 1.0, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(7, 4))
    for label, (probabilities, pushed) in named.items():
        probabilities = np.asarray(probabilities, dtype=np.float64)
        pushed = np.asarray(pushed, dtype=bool)
        which = np.clip(np.digitize(probabilities, edges) - 1, 0, bins - 1)
        fractions = np.array(
            [pushed[which == b].mean() if np.any(which == b) else np.nan for b in range(bins)]
        )
        axis.plot(centres, fractions, marker="o", label=label)
    axis.set_xlabel("p, predicted probability of the true class")
    axis.set_ylabel("fraction pushed away (dH/dt > 0)")
    axis.set_xlim(0, 1)
    axis.set_ylim(-0.02, 1.02)
    axis.grid(alpha=0.3)
    if named:
        axis.legend(fontsize="small")
    axis.set_title(title)
    return _save(fig, path)


def plot_eigenvalue_trajectories(
    histories: Mapping[str, Mapping],
    path: str | Path,
    *,
    learning_rate: float | None = None,
    title: str = "",
) -> Path:
    """Top Hessian eigenvalues (and NTK λ_max) against the training step.

    The dynamical-loss paper's figure: with full-batch gradient descent at learning rate η, a
    minimum is stable only while ``λ_max < 2/η``; a dashed line marks ``2/η`` when
    ``learning_rate`` is given. A second panel shows the NTK's λ_max when a history has it.

    Args:
        histories: label -> a record with ``steps`` (N ints) and ``eigenvalues`` (N rows of the
            top-k eigenvalues, descending), optionally ``ntk_max`` (N floats), as written by
            :class:`metaloss.analysis.hessian_tracker.HessianTracker`.
        path: the PNG to write.
        learning_rate: η, for the ``2/η`` stability line. Defaults to `None` (no line).
        title: figure title. Defaults to `""`.

    Returns:
        The path written.

    References:
        Ruiz-Garcia, Zhang, Schoenholz & Liu, *Tilting the playing field: Dynamical loss
        functions for machine learning*, arXiv:2102.03793.
    """
    records = {
        label: _mapping("histories", record, "records with 'steps' and 'eigenvalues'")
        for label, record in histories.items()
    }
    with_ntk = any(record.get("ntk_max") for record in records.values())
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2 if with_ntk else 1, figsize=(12 if with_ntk else 7, 4))
    hessian_axis = axes[0] if with_ntk else axes
    for index, (label, record) in enumerate(records.items()):
        steps = np.asarray(record.get("steps", []), dtype=np.float64)
        values = [
            np.atleast_1d(np.asarray(row, dtype=np.float64))
            for row in record.get("eigenvalues", [])
        ]
        color = f"C{index % 10}"
        if values:
            width = max(len(row) for row in values)
            table = np.full((len(values), width), np.nan)
            for row, row_values in enumerate(values):
                table[row, : len(row_values)] = row_values
            for k in range(width):
                hessian_axis.plot(
                    steps, table[:, k], color=color, alpha=1.0 if k == 0 else 0.45,
                    linewidth=1.4 if k == 0 else 0.9, label=f"{label}: λ{k + 1}",
                )  # fmt: skip
        if with_ntk and record.get("ntk_max"):
            axes[1].plot(steps, record["ntk_max"], color=color, label=label)
    if learning_rate:
        hessian_axis.axhline(
            2.0 / learning_rate, color="black", linestyle="--", linewidth=1, label="2/η"
        )
    hessian_axis.set_ylabel("Hessian eigenvalue")
    hessian_axis.set_title("top Hessian eigenvalues", fontsize="medium")
    panels = [hessian_axis]
    if with_ntk:
        axes[1].set_ylabel("NTK λ_max")
        axes[1].set_title("empirical NTK, largest eigenvalue", fontsize="medium")
        panels.append(axes[1])
    for axis in panels:
        axis.set_xlabel("training step")
        axis.grid(alpha=0.3)
        if records:
            axis.legend(fontsize="small")
    fig.suptitle(title)
    return _save(fig, path)


def plot_ntk_spectrum(
    named_eigenvalues: Mapping[str, Sequence[float]], path: str | Path, *, title: str = ""
) -> Path:
    """Empirical NTK spectra: eigenvalues in descending order on a log axis, one line per model.

    Non-positive eigenvalues (round-off of a singular kernel) are left out of the log axis.

    Args:
        named_eigenvalues: label -> eigenvalues (:func:`metaloss.analysis.ntk.eigenvalues`).
        path: the PNG to write.
        title: figure title. Defaults to `""`.

    Returns:
        The path written.
    """
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(7, 4))
    for label, values in named_eigenvalues.items():
        values = np.sort(np.asarray(values, dtype=np.float64).reshape(-1))[::-1]
        index = np.arange(1, len(values) + 1)
        positive = values > 0
        axis.plot(index[positive], values[positive], marker=".", markersize=3, label=label)
    axis.set_yscale("log")
    axis.set_xlabel("eigenvalue index (descending)")
    axis.set_ylabel("NTK eigenvalue")
    axis.grid(alpha=0.3, which="both")
    if named_eigenvalues:
        axis.legend(fontsize="small")
    axis.set_title(title)
    return _save(fig, path)


def plot_hessian_density(
    grid: Sequence[float], named_densities: Mapping[str, Sequence[float]], path: str | Path,
    *, title: str = "",
) -> Path:  # fmt: skip
    """Hessian spectral densities (stochastic Lanczos quadrature) on a log-density axis.

    Args:
        grid: the eigenvalue grid, shape ``(G,)``.
        named_densities: label -> the smoothed density on ``grid`` (``G`` values).
        path: the PNG to write.
        title: figure title. Defaults to `""`.

    Returns:
        The path written.
    """
    grid = np.asarray(grid, dtype=np.float64)
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(7, 4))
    for label, density in named_densities.items():
        density = np.asarray(density, dtype=np.float64)
        if density.shape != grid.shape:
            raise ValueError(
                "Invalid value for argument `named_densities`. Expected one value per grid "
                f"point ({grid.shape}). Received: {label}={density.shape}"
            )
        axis.plot(grid, np.clip(density, 1e-12, None), label=label)
    axis.set_yscale("log")
    axis.set_xlabel("eigenvalue")
    axis.set_ylabel("density")
    axis.grid(alpha=0.3)
    if named_densities:
        axis.legend(fontsize="small")
    axis.set_title(title)
    return _save(fig, path)
