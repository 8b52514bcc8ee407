"""The compiled trainer against independent references: a hand-written step and `model.fit`."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from metaloss.losses import Baikal, CyclicClassEmphasis
from metaloss.training import Trainer

from .helpers import blobs, dataset, mlp


def test_one_step_equals_a_hand_written_sgd_step():
    x, y = blobs(n=16)
    model = mlp()
    before = [w.numpy().copy() for w in model.trainable_variables]
    loss = Baikal(from_logits=True)
    # Reference: plain gradient descent with the same loss, computed outside the trainer.
    with tf.GradientTape() as tape:
        value = loss(y, model(x, training=True))
    gradients = tape.gradient(value, model.trainable_variables)
    expected = [w - 0.05 * g.numpy() for w, g in zip(before, gradients, strict=True)]
    trainer = Trainer(model, loss, keras.optimizers.SGD(0.05))
    result = trainer.fit(dataset(x, y, batch_size=16), epochs=1, verbose=0)
    assert result.steps == 1 and result.status == "completed"
    for got, want in zip(model.trainable_variables, expected, strict=True):
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-6)


def test_matches_model_fit_for_an_epoch():
    x, y = blobs()
    reference = mlp(seed=3)
    reference.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss=Baikal(from_logits=True)
    )
    reference.fit(dataset(x, y), epochs=2, verbose=0, shuffle=False)
    model = mlp(seed=3)
    Trainer(model, Baikal(from_logits=True), keras.optimizers.SGD(0.1, momentum=0.9)).fit(
        dataset(x, y), epochs=2, verbose=0
    )
    for got, want in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_eager_and_compiled_agree_and_history_is_complete():
    x, y = blobs()
    results = []
    for eager in (False, True):
        model = mlp(seed=5)
        trainer = Trainer(model, "baikal", keras.optimizers.SGD(0.1), run_eagerly=eager)
        fit = trainer.fit(dataset(x, y), epochs=3, validation=dataset(x, y), verbose=0)
        results.append((fit, model.get_weights()))
    (compiled, w1), (eager, w2) = results
    assert set(compiled.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in compiled.history.values())
    np.testing.assert_allclose(compiled.history["loss"], eager.history["loss"], rtol=1e-5)
    for a, b in zip(w1, w2, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_evaluate_matches_model_evaluate():
    x, y = blobs()
    model = mlp()
    trainer = Trainer(model, keras.losses.CategoricalCrossentropy(from_logits=True), "sgd")
    ours = trainer.evaluate(dataset(x, y))
    loss, accuracy = model.evaluate(x, y, batch_size=16, verbose=0)
    assert ours["loss"] == pytest.approx(loss, rel=1e-5)
    assert ours["accuracy"] == pytest.approx(accuracy)


def test_step_budget_is_exact_across_epochs():
    x, y = blobs(n=64)  # 4 batches of 16 per epoch
    trainer = Trainer(mlp(), "cross_entropy", "sgd")
    result = trainer.fit(dataset(x, y), steps=10, verbose=0)
    assert (result.steps, result.epochs) == (10, 3)
    assert int(trainer.optimizer.iterations.numpy()) == 10
    again = trainer.fit(dataset(x, y), epochs=1, verbose=0)  # a new run counts from zero
    assert (again.steps, again.epochs) == (4, 1)


def test_dynamical_loss_clock_is_advanced_inside_the_compiled_step():
    x, y = blobs(n=48)
    loss = CyclicClassEmphasis(3, period=2, amplitude=4.0, from_logits=True)
    seen = []

    class Spy(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(int(loss.step.numpy()))

    Trainer(mlp(), loss, "sgd").fit(dataset(x, y), epochs=2, callbacks=[Spy()], verbose=0)
    assert seen == list(range(6))  # the step the loss saw = optimizer iterations before it


def test_non_finite_loss_stops_with_a_diverged_status():
    x, y = blobs()
    calls = tf.Variable(0)

    def explodes_at_third_step(y_true, logits):
        calls.assign_add(1)
        ce = keras.losses.categorical_crossentropy(y_true, logits, from_logits=True)
        return tf.where(calls >= 3, float("nan"), 1.0) * ce

    reference = mlp(seed=2)
    Trainer(reference, "cross_entropy", keras.optimizers.SGD(0.1)).fit(
        dataset(x, y), steps=2, verbose=0
    )
    model = mlp(seed=2)
    result = Trainer(model, explodes_at_third_step, keras.optimizers.SGD(0.1)).fit(
        dataset(x, y), epochs=5, verbose=0
    )
    assert result.status == "diverged" and "non-finite" in result.message
    assert (result.epochs, result.steps) == (0, 2)  # the third step was not taken
    # The non-finite step left the weights as the two finite steps made them.
    for got, want in zip(model.get_weights(), reference.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6)


def _everything(model, optimizer, loss=None):
    """Every number a step could change: weights, non-trainable state, optimizer variables."""
    values = [v.numpy().copy() for v in model.variables + optimizer.variables]
    return values + ([loss.step.numpy().copy()] if loss is not None else [])


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda: keras.optimizers.SGD(0.1, momentum=0.9),
        lambda: keras.optimizers.Adam(0.01),
        lambda: keras.optimizers.AdamW(
            keras.optimizers.schedules.ExponentialDecay(0.01, 2, 0.5), weight_decay=0.1
        ),
    ],
    ids=["sgd-momentum", "adam", "adamw-schedule"],
)
def test_a_non_finite_step_changes_nothing(make_optimizer):
    # A NaN input in the 4th batch. With momentum, Adam's moments or weight decay, applying a
    # zero gradient would still move the weights; BatchNorm would take the NaN batch's
    # statistics, dropout would advance its seed; the step-aware loss's clock would move on.
    x, y = blobs(n=64)
    x[50] = np.nan
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((6,)),
            keras.layers.Dense(8),
            keras.layers.BatchNormalization(),
            keras.layers.Dropout(0.3),
            keras.layers.Dense(3),
        ]
    )
    optimizer = make_optimizer()
    loss = CyclicClassEmphasis(3, period=4, amplitude=3.0, from_logits=True)
    trainer = Trainer(model, loss, optimizer)
    seen = []

    class AfterEachStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(_everything(model, optimizer, loss))

    result = trainer.fit(dataset(x, y), epochs=3, callbacks=[AfterEachStep()], verbose=0)
    assert result.status == "diverged" and result.steps == 3
    assert int(optimizer.iterations.numpy()) == 3  # three finite steps, not four
    last_finite, after_bad = seen[2], seen[3]
    assert len(last_finite) == len(after_bad) > 8
    for before, after in zip(last_finite, after_bad, strict=True):
        np.testing.assert_array_equal(after, before)
    # ... and the finite steps did train (the comparison above is not between two constants).
    assert any(not np.array_equal(a, b) for a, b in zip(seen[0], seen[2], strict=True))


def test_callbacks_can_stop_training():
    x, y = blobs()
    stop = keras.callbacks.EarlyStopping(monitor="loss", patience=0, min_delta=10.0)
    result = Trainer(mlp(), "cross_entropy", "sgd").fit(
        dataset(x, y), epochs=10, callbacks=[stop], verbose=0
    )
    assert result.status == "stopped" and result.epochs == 2


def test_progress_bar_only_when_asked(capsys):
    x, y = blobs(n=32)
    trainer = Trainer(mlp(), "cross_entropy", "sgd")
    trainer.fit(dataset(x, y), epochs=1, verbose="auto")  # pytest's stdout is not a terminal
    assert capsys.readouterr().out == ""
    trainer.fit(dataset(x, y), epochs=1, verbose=1)
    out = capsys.readouterr().out
    assert "Epoch 1/1" in out and "accuracy" in out


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [({}, "epochs"), ({"epochs": 0}, "epochs"), ({"epochs": 1, "steps": -2}, "steps")],
)
def test_bad_budgets_are_value_errors(kwargs, argument):
    x, y = blobs(n=16)
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        Trainer(mlp(), "cross_entropy", "sgd").fit(dataset(x, y), **kwargs)


def test_bad_model_and_optimizer_are_value_errors():
    with pytest.raises(ValueError, match="argument `model`"):
        Trainer("mlp", "cross_entropy", "sgd")
    with pytest.raises(ValueError, match="argument `optimizer`"):
        Trainer(mlp(), "cross_entropy", "rmsprop-ish")


def test_a_probability_loss_fed_logits_warns_once_with_the_fix():
    x, y = blobs(n=64)
    with pytest.warns(UserWarning, match="from_logits=True") as caught:
        Trainer(mlp(), Baikal(), "sgd").fit(dataset(x, y), epochs=2, verbose=0)
    assert len([w for w in caught if "from_logits" in str(w.message)]) == 1  # first batch only


@pytest.mark.parametrize(
    ("loss", "softmax"),
    [
        (Baikal(from_logits=True), False),
        (Baikal(), True),
        (keras.losses.CategoricalCrossentropy(), True),
        (keras.losses.MeanSquaredError(), False),  # no from_logits: nothing to say
    ],
)
def test_no_warning_when_the_outputs_fit_the_loss(loss, softmax, recwarn):
    x, y = blobs(n=32)
    model = mlp()
    if softmax:
        model = keras.Sequential([model, keras.layers.Softmax()])
    Trainer(model, loss, "sgd").fit(dataset(x, y), epochs=1, verbose=0)
    assert not [w for w in recwarn if "from_logits" in str(w.message)]
