"""Matplotlib figures, written straight to PNG (the Agg backend: no display needed)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = [
    "loss_shape",
    "plot_comparison",
    "plot_history",
    "plot_loss_shapes",
    "plot_search_progress",
]


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
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)


def loss_shape(loss, probabilities: Sequence[float], *, num_classes: int) -> np.ndarray:
    """A loss's per-sample value when the true class gets probability ``p``.

    The prediction gives the true class ``p`` and every other class ``(1 - p) / (K - 1)``. A loss
    with ``from_logits=True`` receives ``log`` of those probabilities as logits, which its softmax
    maps back to them; other losses receive the probabilities.

    Args:
        loss: a ``keras.losses.Loss`` (its unreduced ``call`` is used) or a per-sample loss
            function of ``(y_true, y_pred)``.
        probabilities: the values of ``p``, each in ``(0, 1)``.
        num_classes: ``K``, at least 2.

    Returns:
        A float64 array of the loss values, shape ``(len(probabilities),)``.

    Example:

    >>> loss_shape(keras.losses.CategoricalCrossentropy(), [0.5], num_classes=3)  # -log 0.5
    array([0.69314718])
    """
    import keras

    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(
            "Invalid value for argument `num_classes`. Expected an integer >= 2. "
            f"Received: num_classes={num_classes!r}"
        )
    p = np.asarray(probabilities, dtype=np.float64).reshape(-1)
    if p.size == 0 or not np.all((p > 0) & (p < 1)):
        raise ValueError(
            "Invalid value for argument `probabilities`. Expected numbers in (0, 1). "
            f"Received: probabilities={probabilities!r}"
        )
    y_pred = np.repeat(((1 - p) / (num_classes - 1))[:, None], num_classes, axis=1)
    y_pred[:, 0] = p
    y_true = np.zeros_like(y_pred)
    y_true[:, 0] = 1.0
    config = loss.get_config() if hasattr(loss, "get_config") else {}
    if getattr(loss, "from_logits", config.get("from_logits", False)):
        y_pred = np.log(y_pred)
    y_true = keras.ops.convert_to_tensor(y_true.astype("float32"))
    y_pred = keras.ops.convert_to_tensor(y_pred.astype("float32"))
    per_sample = loss.call if isinstance(loss, keras.losses.Loss) else loss
    values = per_sample(y_true, y_pred)
    return np.asarray(keras.ops.convert_to_numpy(values), dtype=np.float64).reshape(p.shape)


# The slope panel is linear within ±1 and logarithmic beyond.
_SLOPE_LINTHRESH = 1.0


def _shape(values: np.ndarray) -> np.ndarray:
    """``values - values[-1]`` scaled to a largest magnitude of 1 (unchanged if constant)."""
    shifted = values - values[-1]
    peak = np.max(np.abs(shifted))
    return shifted / peak if peak > 0 else shifted


def plot_loss_shapes(
    named_losses: Mapping[str, object],
    path: str | Path,
    *,
    num_classes: int,
    title: str | None = None,
) -> Path:
    """Loss shapes against the probability ``p`` of the true class (others share ``1 - p``).

    Values come from :func:`loss_shape` on ``p`` in ``[0.01, 0.99]``; a dotted line marks
    chance, ``p = 1/K``. Losses differ by offsets (which change nothing in training) and scales
    (which act as a learning-rate factor, and span orders of magnitude: Baikal's ``1/p`` terms),
    so the two panels separate shape from scale:

    - left, the shape: ``(L(p) - L(0.99)) / max_p |L(p) - L(0.99)|``, each curve shifted to 0 at
      ``p = 0.99`` and divided by its own largest magnitude. Where it is lowest is the
      probability the loss pulls ``p`` towards.
    - right, the scale: the raw slope ``dL/dp`` (central differences), unnormalised, on a
      symmetric-log axis (linear within ±1). A positive slope pushes ``p`` down.

    Args:
        named_losses: label -> loss (anything :func:`loss_shape` accepts).
        path: the PNG to write.
        num_classes: ``K``, the task's number of classes.
        title: figure title. Defaults to `None` (no title).

    Returns:
        The path written.

    Example:

    ```python
    losses = {n: metaloss.losses.get(n) for n in ("cross_entropy", "baikal")}
    plot_loss_shapes(losses, "shapes.png", num_classes=10)
    ```
    """
    p = np.linspace(0.01, 0.99, 99)
    curves = {
        label: loss_shape(loss, p, num_classes=num_classes) for label, loss in named_losses.items()
    }
    plt = _pyplot()
    fig, (shape, slope) = plt.subplots(1, 2, figsize=(10, 4))
    for label, values in curves.items():
        shape.plot(p, _shape(values), label=label)
        slope.plot(p, np.gradient(values, p), label=label)
    shape.set_ylabel("(L(p) − L(0.99)) / max |L(p) − L(0.99)|")
    shape.set_title("shape (offset removed, scaled to 1)", fontsize="medium")
    slope.set_ylabel("dL/dp")
    slope.set_yscale("symlog", linthresh=_SLOPE_LINTHRESH)
    slope.set_title("slope (unscaled; symmetric log axis)", fontsize="medium")
    for axis in (shape, slope):
        axis.axvline(1 / num_classes, color="gray", linestyle=":", linewidth=1)
        axis.axhline(0, color="gray", linewidth=0.5)
        axis.set_xlabel("p, predicted probability of the true class")
        axis.grid(alpha=0.3)
        if curves:
            axis.legend(fontsize="small")
    fig.suptitle(title or "")
    try:
        return _save(fig, path)
    finally:
        plt.close(fig)
