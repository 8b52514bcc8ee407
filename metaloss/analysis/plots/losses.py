"""Figures of losses themselves: shapes, slopes, learning rules (γ) and dynamical weights."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from metaloss.analysis.plots._figure import pyplot as _pyplot
from metaloss.analysis.plots._figure import save as _save

__all__ = [
    "learning_rule",
    "loss_shape",
    "plot_cyclic_weights",
    "plot_gamma_curves",
    "plot_learned_loss_snapshots",
    "plot_loss_shapes",
]


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

    y_true, y_pred = _path_points(probabilities, num_classes)
    p = y_pred[:, 0]
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
    return _save(fig, path)


def _path_points(probabilities: Sequence[float], num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions on the path of :func:`loss_shape`: target ``p``, others share."""
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
    y = np.repeat(((1 - p) / (num_classes - 1))[:, None], num_classes, axis=1)
    y[:, 0] = p
    x = np.zeros_like(y)
    x[:, 0] = 1.0
    return x, y


def learning_rule(
    loss, probabilities: Sequence[float], *, num_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    """A loss's ``γ`` for the target and for a non-target class along :func:`loss_shape`'s path.

    Formula: ``γ_k = -n ∂L/∂y_k`` (:func:`metaloss.analysis.gamma`) at ``y_target = p``,
    ``y_other = (1 - p)/(n - 1)``.

    Args:
        loss: anything :func:`metaloss.analysis.gamma` accepts.
        probabilities: the values of ``p``, each in ``(0, 1)``.
        num_classes: ``n``, at least 2.

    Returns:
        ``(γ_target, γ_non_target)``, two float64 arrays of shape ``(len(probabilities),)``.

    Example:

    >>> target, other = learning_rule("mse", [0.5], num_classes=2)   # γ = 2(x - y)
    >>> float(target[0]), float(other[0])
    (1.0, -1.0)
    """
    from metaloss.analysis.decomposition import gamma

    x, y = _path_points(probabilities, num_classes)
    values = gamma(loss, x, y)
    return values[:, 0], values[:, 1]


def plot_gamma_curves(
    named_losses: Mapping[str, object],
    path: str | Path,
    *,
    num_classes: int,
    title: str | None = None,
) -> Path:
    """Learning rules side by side: ``γ_target(p)``, ``γ_non-target(p)`` and their difference.

    Along :func:`loss_shape`'s path (the target gets ``p``, the others share ``1 - p``):

    - left, ``γ_target``: how hard the loss pulls the target's probability up;
    - middle, ``γ_non-target``: the same for each other class;
    - right, ``γ_target - γ_non-target``: under softmax only this difference moves the target's
      logit relative to the others (a class-constant shift of ``γ`` changes nothing). Where it
      turns negative the loss pushes a correct prediction back: its optimum lies short of
      ``p = 1``.

    Axes are symmetric-log (linear within ±1); a dotted line marks chance, ``p = 1/n``.

    Args:
        named_losses: label -> loss (anything :func:`learning_rule` accepts).
        path: the PNG to write.
        num_classes: ``n``, the task's number of classes.
        title: figure title. Defaults to `None` (no title).

    Returns:
        The path written.

    Example:

    ```python
    plot_gamma_curves({"CE": "cross_entropy", "Baikal": "baikal"}, "gamma.png", num_classes=10)
    ```

    References:
        Gonzalez & Miikkulainen, *Effective Regularization Through Loss-Function Metalearning*,
        arXiv:2010.00788.
    """
    p = np.linspace(0.01, 0.99, 99)
    rules = {
        label: learning_rule(loss, p, num_classes=num_classes)
        for label, loss in named_losses.items()
    }
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    names = ("γ target", "γ non-target", "γ target − γ non-target")
    for label, (target, other) in rules.items():
        for axis, values in zip(axes, (target, other, target - other), strict=True):
            axis.plot(p, values, label=label)
    for axis, name in zip(axes, names, strict=True):
        axis.set_yscale("symlog", linthresh=_SLOPE_LINTHRESH)
        axis.axvline(1 / num_classes, color="gray", linestyle=":", linewidth=1)
        axis.axhline(0, color="gray", linewidth=0.5)
        axis.set_xlabel("p, predicted probability of the true class")
        axis.set_ylabel(name)
        axis.grid(alpha=0.3)
        if rules:
            axis.legend(fontsize="small")
    fig.suptitle(title or "")
    return _save(fig, path)


def plot_cyclic_weights(loss, path: str | Path, *, steps: int | None = None) -> Path:
    """The class weights ``Γ_i(t)`` of a cyclic class-emphasis loss over training steps.

    Formula: see :func:`metaloss.losses.cyclic_weights` (a triangle wave 1 → A → 1 for the
    emphasised class of each period, normalised so ``Σ_i Γ_i = C``).

    Args:
        loss: a :class:`metaloss.losses.CyclicClassEmphasis` (or a spec naming one).
        path: the PNG to write.
        steps: the last step to draw. Defaults to `None`: ``C`` periods, or ``num_periods``
            periods when the loss has them.

    Returns:
        The path written.

    Example:

    ```python
    loss = metaloss.losses.CyclicClassEmphasis(3, period=5000, amplitude=70)
    plot_cyclic_weights(loss, "weights.png")
    ```

    References:
        Ruiz-Garcia, Zhang, Schoenholz & Liu, *Tilting the playing field: Dynamical loss
        functions for machine learning*, arXiv:2102.03793.
    """
    from metaloss.losses import CyclicClassEmphasis, cyclic_weights, get

    loss = get(loss)
    if not isinstance(loss, CyclicClassEmphasis):
        raise ValueError(
            "Invalid value for argument `loss`. Expected a CyclicClassEmphasis loss. "
            f"Received: loss={loss!r}"
        )
    if steps is None:
        steps = loss.period * (loss.num_periods or loss.num_classes)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(
            "Invalid value for argument `steps`. Expected an integer >= 1. "
            f"Received: steps={steps!r}"
        )
    t = np.unique(np.linspace(0, steps, min(steps + 1, 2001)).astype(np.int64))
    weights = np.asarray(
        cyclic_weights(
            t,
            loss.num_classes,
            loss.period,
            loss.amplitude,
            loss.order,
            loss.final_plain_period,
            loss.num_periods,
        ),
        dtype=np.float64,
    )
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(8, 3.5))
    for k in range(loss.num_classes):
        axis.plot(t, weights[:, k], label=f"class {k}")
    axis.set_xlabel("training step")
    axis.set_ylabel("Γ_i(t)")
    axis.set_title(f"cyclic class emphasis: period {loss.period}, amplitude {loss.amplitude:g}")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small", ncol=min(loss.num_classes, 5))
    return _save(fig, path)


def plot_learned_loss_snapshots(
    snapshots: Sequence,
    path: str | Path,
    *,
    max_curves: int = 6,
    title: str | None = None,
) -> Path:
    """A learned loss's per-output curves at several points of training (AdaLFL's figures).

    Left: ``ℓ_φ(1, p)``, the loss of a target output predicting ``p``; right: ``ℓ_φ(0, p)``, a
    non-target output. One line per snapshot, darker to lighter with training; at most
    ``max_curves`` snapshots, evenly spaced, the first and last always among them. The curves
    show what the paper reports: the loss flattening as training goes on (an implicit learning
    rate schedule) and minima short of 1 for the target (adaptive label smoothing).

    Args:
        snapshots: :class:`metaloss.search.Snapshot` objects (or anything with ``step`` and a
            ``loss()`` returning a :class:`metaloss.losses.LearnedLoss`), in training order.
        path: the PNG to write.
        max_curves: at most this many lines per panel. Defaults to `6`.
        title: figure title. Defaults to `None`.

    Returns:
        The path written.
    """
    if not snapshots:
        raise ValueError(
            "Invalid value for argument `snapshots`. Expected at least one snapshot. "
            f"Received: snapshots={snapshots!r}"
        )
    if isinstance(max_curves, bool) or not isinstance(max_curves, int) or max_curves < 1:
        raise ValueError(
            "Invalid value for argument `max_curves`. Expected an integer >= 1. "
            f"Received: max_curves={max_curves!r}"
        )
    picks = np.unique(np.linspace(0, len(snapshots) - 1, min(max_curves, len(snapshots))).round())
    chosen = [snapshots[int(i)] for i in picks]
    p = np.linspace(0.0, 1.0, 201)
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    colours = plt.get_cmap("viridis")(np.linspace(0, 0.9, len(chosen)))
    for snapshot, colour in zip(chosen, colours, strict=True):
        loss = snapshot.loss()
        for axis, label in zip(axes, (1.0, 0.0), strict=True):
            values = np.asarray(loss.per_output(label, p), dtype=np.float64)
            axis.plot(p, values, color=colour, label=f"step {snapshot.step}")
    for axis, name in zip(
        axes, ("target output, ℓ(1, p)", "non-target output, ℓ(0, p)"), strict=True
    ):
        axis.set_xlabel("predicted probability p")
        axis.set_ylabel("learned loss")
        axis.set_title(name)
        axis.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, path)
