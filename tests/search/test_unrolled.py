"""The differentiable optimizer step equals Keras's own ``apply_gradients``."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from metaloss.search._unrolled import check_unrollable, unrolled_step

SCHEDULE = keras.optimizers.schedules.ExponentialDecay(0.1, decay_steps=1, decay_rate=0.5)
OPTIMIZERS = {
    "sgd": lambda: keras.optimizers.SGD(0.1),
    "sgd_momentum": lambda: keras.optimizers.SGD(0.1, momentum=0.9),
    "sgd_nesterov_decay": lambda: keras.optimizers.SGD(
        0.05, momentum=0.8, nesterov=True, weight_decay=0.01
    ),
    "sgd_schedule": lambda: keras.optimizers.SGD(SCHEDULE, momentum=0.5),
    "adam": lambda: keras.optimizers.Adam(0.01),
    "adamw_schedule": lambda: keras.optimizers.AdamW(SCHEDULE, weight_decay=0.1),
}


def gradients_at(step, shapes):
    rng = np.random.default_rng(step)
    return [tf.constant(rng.normal(size=shape).astype("float32")) for shape in shapes]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
@pytest.mark.parametrize("fresh", [False, True])
def test_unrolled_step_equals_keras_apply_gradients(name, fresh):
    variables = [keras.Variable(np.linspace(-1, 1, 6).reshape(2, 3)), keras.Variable([0.5, 0.0])]
    optimizer = OPTIMIZERS[name]()
    optimizer.build(variables)
    shapes = [v.shape for v in variables]
    for step in range(3):  # build up momenta, velocities and the iteration count
        optimizer.apply_gradients(zip(gradients_at(step, shapes), variables, strict=True))
    gradients = gradients_at(99, shapes)
    reference = optimizer
    if fresh:  # a new optimizer from the same config, at iteration 0 with zero slots
        reference = OPTIMIZERS[name]()
        reference.build(variables)
    values = [tf.convert_to_tensor(v) for v in variables]
    predicted = unrolled_step(optimizer, values, gradients, variables, fresh=fresh)
    reference.apply_gradients(zip(gradients, variables, strict=True))
    for got, want in zip(predicted, variables, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)  # float32 round-off


def test_zero_gradient_under_adam_has_a_finite_derivative():
    variable = keras.Variable([1.0, 2.0])
    optimizer = keras.optimizers.Adam(0.01)
    optimizer.build([variable])
    gradient = tf.constant([0.0, 1.0])
    with tf.GradientTape() as tape:
        tape.watch(gradient)
        (value,) = unrolled_step(
            optimizer, [tf.convert_to_tensor(variable)], [gradient], [variable]
        )
        total = tf.reduce_sum(value)
    assert np.isfinite(tape.gradient(total, gradient).numpy()).all()


@pytest.mark.parametrize(
    "optimizer",
    [
        keras.optimizers.RMSprop(0.1),
        keras.optimizers.SGD(0.1, clipnorm=1.0),
        keras.optimizers.Adam(0.1, amsgrad=True),
        "sgd",
    ],
)
def test_optimizers_it_cannot_mirror_are_rejected_by_name(optimizer):
    with pytest.raises(ValueError, match="`optimizer`"):
        check_unrollable(optimizer)
