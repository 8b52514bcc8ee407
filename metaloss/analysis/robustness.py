"""Adversarial robustness: accuracy under FGSM and PGD attacks (cleverhans), in input space.

Attacks perturb the model's *inputs* as the data pipeline gives them: pixels in ``[0, 1]`` for
image datasets, whose normalisation lives inside metaloss models (a ``Normalization`` layer),
so an ε of 0.1 means a tenth of the pixel range, as in the papers. Adversarial examples are
clipped to ``clip`` (``(0, 1)`` by default; `None` for unbounded inputs such as MNIST-1D).

References:
    Goodfellow, Shlens & Szegedy, *Explaining and Harnessing Adversarial Examples*,
    arXiv 1412.6572 (FGSM); Madry et al., *Towards Deep Learning Models Resistant to
    Adversarial Attacks*, arXiv 1706.06083 (PGD); Gonzalez & Miikkulainen, *Effective
    Regularization Through Loss-Function Metalearning*, arXiv 2010.00788 (robustness of
    metalearned losses).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import numpy as np

from metaloss.losses._base import invalid_value

__all__ = ["DEFAULT_EPS", "default_clip", "robust_accuracy"]

DEFAULT_EPS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3)
_ATTACKS = ("fgsm", "pgd")
_NORMS = (np.inf, 1, 2)


def _cleverhans_attacks():
    """cleverhans's FGSM and PGD, or an ImportError naming the extra that installs them."""
    try:
        from cleverhans.tf2.attacks.fast_gradient_method import fast_gradient_method
        from cleverhans.tf2.attacks.projected_gradient_descent import projected_gradient_descent
    except ImportError as error:
        raise ImportError(
            "metaloss.analysis.robustness needs cleverhans, which the `adversarial` extra "
            "installs: pip install 'metaloss[adversarial]' (or 'metaloss[all]')"
        ) from error
    return fast_gradient_method, projected_gradient_descent


def default_clip(input_shape: Sequence[int]) -> tuple[float, float] | None:
    """``(0, 1)`` for images (rank-3 inputs, pixels in ``[0, 1]``), `None` for vector data."""
    return (0.0, 1.0) if len(tuple(input_shape)) == 3 else None


def _check_eps(eps) -> list[float]:
    expected = "a non-empty list of finite numbers >= 0"
    try:
        values = [float(e) for e in ([eps] if np.isscalar(eps) else eps)]
    except (TypeError, ValueError):
        raise invalid_value("eps", expected, eps) from None
    if not values or not all(math.isfinite(e) and e >= 0 for e in values):
        raise invalid_value("eps", expected, eps)
    return values


def _check_options(attack, norm, steps, step_size, clip, batch_size):
    if attack not in _ATTACKS:
        raise invalid_value("attack", f"one of {list(_ATTACKS)}", attack)
    if norm not in _NORMS or (attack == "pgd" and norm == 1):
        allowed = "numpy.inf or 2" if attack == "pgd" else "numpy.inf, 1 or 2"
        raise invalid_value("norm", f"{allowed} for {attack}", norm)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise invalid_value("steps", "a positive integer", steps)
    if step_size is not None and not (math.isfinite(step_size) and step_size > 0):
        raise invalid_value("step_size", "a finite number > 0 or None", step_size)
    if clip is not None and (len(clip) != 2 or not clip[0] < clip[1]):
        raise invalid_value("clip", "None or a (low, high) pair with low < high", clip)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise invalid_value("batch_size", "a positive integer", batch_size)


def _pgd_step(eps: float, steps: int, step_size: float | None) -> float:
    """PGD's step: ``step_size``, or Madry et al.'s ``2.5 ε / steps``; never larger than ε."""
    if eps == 0:
        return 0.0  # no perturbation: the clean inputs, whatever the step
    size = 2.5 * eps / steps if step_size is None else float(step_size)
    size = min(size, eps) if step_size is None else size
    if size > eps:
        raise invalid_value(
            "step_size", f"a PGD step no larger than eps={eps} (cleverhans's requirement)", size
        )
    return size


def _per_sample_loss(gradient_loss):
    """cleverhans's ``loss_fn(labels=, logits=)`` for ``gradient_loss`` (None: its own CE)."""
    if isinstance(gradient_loss, str) and gradient_loss == "cross_entropy":
        return None
    import keras
    import tensorflow as tf

    from metaloss import losses

    loss = losses.get(gradient_loss, from_logits=True)
    per_sample = loss.call if isinstance(loss, keras.losses.Loss) else loss
    sparse = isinstance(loss, keras.losses.SparseCategoricalCrossentropy)

    def loss_fn(labels, logits):
        # Keras's own cross-entropies want one label format each; the zoo takes both.
        targets = labels if sparse else tf.one_hot(labels, tf.shape(logits)[-1])
        return per_sample(targets, logits)

    return loss_fn


def _batches(data, batch_size):
    """``(x, class ids)`` batches from an ``(x, y)`` pair or a batched ``tf.data.Dataset``."""
    import tensorflow as tf

    if isinstance(data, tf.data.Dataset):
        batches = data
    elif isinstance(data, tuple | list) and len(data) == 2:
        batches = tf.data.Dataset.from_tensor_slices((data[0], data[1])).batch(batch_size)
    else:
        raise invalid_value("data", "an (x, y) pair or a batched tf.data.Dataset", type(data))
    for x, y in batches:
        if len(y.shape) > 1 and y.shape[-1] > 1:
            y = tf.argmax(y, axis=-1)
        yield tf.cast(x, tf.float32), tf.cast(tf.reshape(y, [-1]), tf.int64)


def robust_accuracy(
    model,
    data,
    *,
    attack: str = "fgsm",
    eps: Sequence[float] = DEFAULT_EPS,
    norm=np.inf,
    gradient_loss="cross_entropy",
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    clip: tuple[float, float] | None = (0.0, 1.0),
    batch_size: int = 256,
    seed: int = 0,
) -> dict[float, float]:
    """Accuracy on adversarial examples, one value per perturbation size ε.

    Formula (untargeted, with the true labels y; ``Π`` projects onto the ε-ball around x and
    into ``clip``):

    ```
    FGSM:  x' = clip(x + ε · sign(∇_x L(y, f(x))))                         (norm = ∞)
    PGD:   x_0 = x + U(-ε, ε) (random_start),  x_{k+1} = Π(x_k + α · sign(∇_x L(y, f(x_k))))
    ```

    with ``α = step_size`` (default ``2.5 ε / steps``, Madry et al.'s choice, capped at ε);
    other norms use cleverhans's normalised steps. ``L`` is ``gradient_loss``.

    Args:
        model: a Keras model returning logits (every metaloss model does).
        data: an ``(x, y)`` pair of arrays or a batched ``tf.data.Dataset`` of ``(x, y)``;
            labels one-hot or class ids.
        attack: `"fgsm"` or `"pgd"`. Defaults to `"fgsm"`.
        eps: the perturbation sizes, each >= 0. Defaults to `DEFAULT_EPS` (0 to 0.3 by 0.05).
        norm: ``numpy.inf``, 1 (FGSM only) or 2. Defaults to `numpy.inf`.
        gradient_loss: the loss whose input gradient drives the attack: `"cross_entropy"`, or
            any loss :func:`metaloss.losses.get` accepts (read as taking logits), e.g. the loss
            the model was trained with. Defaults to `"cross_entropy"`.
        steps: PGD iterations. Defaults to `10`.
        step_size: PGD's step α; larger than ε is a ``ValueError``. Defaults to `None`.
        random_start: PGD starts from a uniform point of the ε-ball. Defaults to `True`.
        clip: the valid input range, or `None`. Defaults to `(0.0, 1.0)` (pixels).
        batch_size: batch size for ``(x, y)`` arrays. Defaults to `256`.
        seed: seeds PGD's random start (cleverhans draws it from TensorFlow's global seed,
            which this sets). Defaults to `0`.

    Returns:
        ``{ε: accuracy}`` in the order of ``eps``.

    Raises:
        ValueError: for a negative or non-finite ε, a PGD step larger than ε, or other invalid
            arguments. ImportError: without cleverhans (the `adversarial` extra).

    Example:

    ```python
    robust_accuracy(model, data.arrays("test"), eps=[0, 0.1, 0.2])  # {0.0: 0.97, 0.1: ...}
    ```
    """
    eps_values = _check_eps(eps)
    _check_options(attack, norm, steps, step_size, clip, batch_size)
    pgd_steps = {e: _pgd_step(e, steps, step_size) for e in eps_values} if attack == "pgd" else {}
    fgsm, pgd = _cleverhans_attacks()
    import tensorflow as tf

    loss_fn = _per_sample_loss(gradient_loss)
    low, high = clip if clip is not None else (None, None)

    def model_fn(x):
        return model(x, training=False)

    def adversarial(x, y, e):
        if attack == "fgsm":
            return fgsm(model_fn, x, e, norm, loss_fn, low, high, y=y)
        return pgd(
            model_fn,
            x,
            e,
            pgd_steps[e],
            steps,
            norm,
            loss_fn,
            low,
            high,
            y=y,
            rand_init=random_start and e > 0,
        )

    def correct(x, y, e):
        predictions = tf.argmax(model_fn(adversarial(x, y, e)), axis=-1)
        return tf.reduce_sum(tf.cast(tf.equal(predictions, y), tf.int64))

    # One compiled function per ε: cleverhans's PGD checks ε in Python, so ε stays a float.
    compiled = {
        e: tf.function(functools.partial(correct, e=e), reduce_retracing=True) for e in eps_values
    }
    tf.random.set_seed(seed)
    counts = dict.fromkeys(eps_values, 0)
    total = 0
    for x, y in _batches(data, batch_size):
        total += int(y.shape[0])
        for e in eps_values:
            counts[e] += int(compiled[e](x, y))
    if total == 0:
        raise invalid_value("data", "at least one example", "an empty dataset")
    return {e: counts[e] / total for e in eps_values}
