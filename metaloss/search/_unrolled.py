"""One optimizer step written as a differentiable function of the gradients.

Keras's TensorFlow optimizers update variables in place (``stateless_apply`` is not supported on
this backend), so the unrolled meta-gradient of AdaLFL needs the update rule as a pure function:
``θ' = U(θ, g; state)``. This module mirrors ``keras.optimizers.SGD`` (momentum, Nesterov) and
``keras.optimizers.Adam`` (and AdamW), including decoupled weight decay and learning-rate
schedules, reading the optimizer's current state without changing it. The tests check every
supported configuration against Keras's own ``apply_gradients``.
"""

from __future__ import annotations

import keras
import tensorflow as tf

from metaloss.losses._base import invalid_value

__all__ = ["check_unrollable", "unrolled_step"]

_UNSUPPORTED = (
    "clipnorm",
    "clipvalue",
    "global_clipnorm",
    "use_ema",
    "gradient_accumulation_steps",
    "loss_scale_factor",
    "amsgrad",
)


def check_unrollable(optimizer, argument: str = "optimizer") -> None:
    """Raises ``ValueError`` unless :func:`unrolled_step` can mirror ``optimizer``."""
    if not isinstance(optimizer, keras.optimizers.SGD | keras.optimizers.Adam):
        raise invalid_value(argument, "a keras.optimizers.SGD or Adam (AdamW)", optimizer)
    config = optimizer.get_config()
    used = [name for name in _UNSUPPORTED if config.get(name)]
    if used:
        raise invalid_value(
            argument,
            f"an SGD or Adam optimizer without {', '.join(used)}",
            {k: config[k] for k in used},
        )


def _learning_rate(optimizer, iteration):
    rate = optimizer._learning_rate
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        return rate(iteration)
    return rate() if callable(rate) and not isinstance(rate, keras.Variable) else rate


def _slots(optimizer, names, variable, fresh):
    slots = [getattr(optimizer, name)[optimizer._get_variable_index(variable)] for name in names]
    return [tf.zeros_like(s) if fresh else tf.convert_to_tensor(s) for s in slots]


def _safe_sqrt(value):
    """``sqrt`` whose gradient at 0 is 0 instead of NaN (the Adam update's true derivative)."""
    positive = value > 0
    return tf.where(positive, tf.sqrt(tf.where(positive, value, tf.ones_like(value))), 0.0)


def unrolled_step(optimizer, values, gradients, variables, *, fresh: bool = False):
    """The values ``optimizer.apply_gradients`` would give, as a differentiable function.

    Formula (lr at the current iteration t; wd = weight decay, applied first as Keras does):

    ```
    θ ← θ - lr·wd·θ
    SGD:       m' = μ m - lr g;   θ' = θ + m'   (Nesterov: θ' = θ + μ m' - lr g)
    Adam:      m' = m + (1-β₁)(g - m);  v' = v + (1-β₂)(g² - v)
               θ' = θ - lr √(1-β₂^{t+1}) / (1-β₁^{t+1}) · m' / (√v' + ε)
    ```

    Args:
        optimizer: a built, :func:`check_unrollable` optimizer.
        values: the current parameter values (tensors), one per variable.
        gradients: gradients with respect to ``values``.
        variables: the optimizer's variables matching ``values`` (to find their slots).
        fresh: start from a new optimizer's state (zero slots, iteration 0) instead of the
            current one, as ML3's offline phase does. Defaults to `False`.

    Returns:
        The updated values, differentiable with respect to ``gradients`` (and ``values``).
    """
    iteration = tf.zeros([], "int64") if fresh else tf.convert_to_tensor(optimizer.iterations)
    updated = []
    for value, gradient, variable in zip(values, gradients, variables, strict=True):
        dtype = value.dtype
        rate = tf.cast(_learning_rate(optimizer, iteration), dtype)
        gradient = tf.cast(gradient, dtype)
        if optimizer.weight_decay is not None and optimizer._use_weight_decay(variable):
            value = value - value * tf.cast(optimizer.weight_decay, dtype) * rate
        if isinstance(optimizer, keras.optimizers.Adam):
            value = _adam(optimizer, value, gradient, variable, rate, iteration, fresh)
        else:
            value = _sgd(optimizer, value, gradient, variable, rate, fresh)
        updated.append(value)
    return updated


def _sgd(optimizer, value, gradient, variable, rate, fresh):
    if optimizer.momentum == 0:
        return value - gradient * rate
    (momentum_slot,) = _slots(optimizer, ["momentums"], variable, fresh)
    momentum = tf.cast(optimizer.momentum, value.dtype)
    velocity = momentum_slot * momentum - gradient * rate
    if optimizer.nesterov:
        return value + velocity * momentum - gradient * rate
    return value + velocity


def _adam(optimizer, value, gradient, variable, rate, iteration, fresh):
    # Where Keras casts a hyperparameter to the variable's dtype (through float32) and where it
    # uses the Python float is mirrored exactly: they differ by ~1e-8 relative.
    dtype = value.dtype
    m, v = _slots(optimizer, ["_momentums", "_velocities"], variable, fresh)
    step = tf.cast(iteration + 1, dtype)
    beta_1_power = tf.pow(tf.cast(optimizer.beta_1, dtype), step)
    beta_2_power = tf.pow(tf.cast(optimizer.beta_2, dtype), step)
    alpha = rate * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    m = m + (gradient - m) * (1 - optimizer.beta_1)
    v = v + (tf.square(gradient) - v) * (1 - optimizer.beta_2)
    return value - m * alpha / (_safe_sqrt(v) + optimizer.epsilon)
