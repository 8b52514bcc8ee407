"""Cyclic class emphasis: the weight schedule by hand, the loss against Keras's crossentropy."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from metaloss.losses import CyclicClassEmphasis, cyclic_class_emphasis, cyclic_weights
from metaloss.training import LossClock


def weights(step, **kwargs):
    return np.asarray(cyclic_weights(step, **{"num_classes": 3, **kwargs}))


def test_triangle_wave_by_hand():
    # T = 10, A = 5. Emphasised weight w: t=0 → 1, t=2 → 1 + 2·4·0.2 = 2.6, t=5 → 5,
    # t=8 → 9 - 8·0.8 = 2.6. Γ = 3 w_i / (w + 2).
    for step, w in [(0, 1.0), (2, 2.6), (5, 5.0), (8, 2.6)]:
        expected = 3 * np.array([w, 1, 1]) / (w + 2)
        np.testing.assert_allclose(weights(step, period=10, amplitude=5), expected, rtol=1e-6)


def test_classes_cycle_and_weights_sum_to_num_classes():
    steps = np.arange(0, 60)
    gamma = weights(steps, period=10, amplitude=4)
    np.testing.assert_allclose(gamma.sum(axis=-1), 3.0, rtol=1e-6)
    # Mid-period peaks: period p emphasises class p mod 3.
    assert [int(np.argmax(gamma[10 * p + 5])) for p in range(6)] == [0, 1, 2, 0, 1, 2]


def test_custom_order_and_final_plain_period():
    gamma = weights(
        [5, 15, 25, 35],
        period=10,
        amplitude=4,
        order=[2, 0],
        final_plain_period=True,
        num_periods=3,
    )
    assert int(np.argmax(gamma[0])) == 2 and int(np.argmax(gamma[1])) == 0
    np.testing.assert_allclose(gamma[2:], 1.0)  # the 3rd (final) period and after: plain CE


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"period": 0}, "period"),
        ({"amplitude": 0.5}, "amplitude"),
        ({"order": [0, 3]}, "order"),
        ({"order": []}, "order"),
        ({"final_plain_period": True}, "num_periods"),
        ({"num_classes": 1}, "num_classes"),
    ],
)
def test_invalid_schedules_are_value_errors(kwargs, argument):
    arguments = {"num_classes": 3, "period": 10, "amplitude": 2.0, **kwargs}
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        CyclicClassEmphasis(**arguments)


def test_loss_is_gamma_of_the_target_times_keras_crossentropy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(12, 3)).astype("float32")
    labels = rng.integers(0, 3, size=12)
    loss = CyclicClassEmphasis(3, period=10, amplitude=5, from_logits=True, reduction="none")
    loss.step.assign(2)
    gamma = 3 * np.array([2.6, 1, 1]) / 4.6  # by hand, as in test_triangle_wave_by_hand
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True, reduction="none")
    expected = gamma[labels] * ce(labels, logits).numpy()
    np.testing.assert_allclose(loss(labels, logits), expected, rtol=1e-5)


def test_function_form_with_explicit_weights():
    value = cyclic_class_emphasis([0], [[0.5, 0.25, 0.25]], [1.8, 0.6, 0.6])
    assert float(value[0]) == pytest.approx(1.8 * np.log(2), rel=1e-6)


def test_step_variable_is_read_at_run_time_inside_tf_function():
    loss = CyclicClassEmphasis(2, period=4, amplitude=3, from_logits=True)
    compiled = tf.function(lambda y, z: loss(y, z))
    labels, logits = tf.constant([0]), tf.constant([[0.0, 0.0]])
    values = []
    for step in (0, 2):
        loss.step.assign(step)
        values.append(float(compiled(labels, logits)))
    # step 0: Γ = (1, 1); step 2: w = 3, Γ_0 = 2·3/4 = 1.5; CE = log 2 in both cases.
    np.testing.assert_allclose(values, [np.log(2), 1.5 * np.log(2)], rtol=1e-6)


def test_loss_clock_drives_the_schedule_under_model_fit():
    loss = CyclicClassEmphasis(2, period=3, amplitude=2, from_logits=True)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss=loss)
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(int(loss.step.numpy()))

    x, y = np.zeros((8, 2), "float32"), np.zeros(8, "int32")
    model.fit(x, y, batch_size=2, epochs=2, verbose=0, callbacks=[LossClock(), Spy()])
    assert seen == list(range(8))  # optimizer iterations before each of the 8 batches


def test_config_round_trip_keeps_schedule_but_not_step():
    loss = CyclicClassEmphasis(4, 100, 7.5, order=[3, 1], final_plain_period=True, num_periods=5)
    loss.step.assign(42)
    clone = CyclicClassEmphasis.from_config(loss.get_config())
    assert clone.get_config() == loss.get_config()
    assert int(clone.step.numpy()) == 0
