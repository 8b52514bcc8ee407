"""PopulationTrainer: K replicas in one program equal K separately trained copies.

The reference for every replica is an independent computation: a fresh `Trainer` (its own
optimizer, its own compiled step) trained alone from the same weights on the same batches.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from metaloss.losses import Baikal, CyclicClassEmphasis, TaylorGLO
from metaloss.training import PopulationTrainer, Trainer
from metaloss.training._population_layers import PopulationGraph
from tests.training.helpers import blobs, dataset, mlp

THETAS = [
    [0, 0, 0, -2, 0, 2, 0, 0],  # MSE less a constant
    [0.5, -0.3, 1.0, -1.0, 0.5, 3.0, -0.2, 0.4],
    [-1.0, 0.2, 0.0, -3.0, 1.0, 1.5, 0.3, -0.5],
]


def _inf_loss(y_true, y_pred):
    """A loss that is infinite from the first step: its replica must diverge at step 1."""
    return ops.sum(ops.square(y_pred), axis=-1) * float("inf")


def _separately(model, weights, loss, optimizer, data, *, epochs=1, steps=None):
    """A fresh copy of ``model`` at ``weights``, trained alone: the reference."""
    copy = keras.models.clone_model(model)
    copy.set_weights(weights)
    Trainer(copy, loss, optimizer).fit(data, epochs=epochs, steps=steps, verbose=0)
    return [v.numpy() for v in copy.trainable_variables]


def _assert_same_weights(actual, expected, atol=1e-5):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected, strict=True):
        np.testing.assert_allclose(a, e, atol=atol, rtol=1e-5)


def _optimizers():
    return {
        "momentum": lambda: keras.optimizers.SGD(0.1, momentum=0.9),
        "adam_weight_decay": lambda: keras.optimizers.AdamW(1e-2, weight_decay=0.05),
    }


@pytest.mark.parametrize("optimizer", sorted(_optimizers()))
@pytest.mark.parametrize("family", ["taylor_glo", "mixed"])
def test_replicas_equal_separately_trained_copies(optimizer, family):
    x, y = blobs()
    data = dataset(x, y)
    model = mlp()
    initial = model.get_weights()
    if family == "taylor_glo":  # the stacked-θ path
        losses = [TaylorGLO(theta, from_logits=True) for theta in THETAS]
    else:  # one loss call per replica; the cyclic loss reads the step from its clock
        losses = [
            keras.losses.CategoricalCrossentropy(from_logits=True),
            Baikal(from_logits=True),
            CyclicClassEmphasis(3, period=4, amplitude=5, from_logits=True),
        ]
    make = _optimizers()[optimizer]
    trainer = PopulationTrainer(model, losses, make())
    # One step first (the criterion), then the rest of two epochs.
    trainer.fit(data, steps=1, verbose=0)
    for k, loss in enumerate(losses):
        reference = _separately(model, initial, loss, make(), data, steps=1)
        _assert_same_weights(trainer.replica_weights(k), reference)
    trainer = PopulationTrainer(model, losses, make())
    results = trainer.fit(data, epochs=2, verbose=0)
    for k, loss in enumerate(losses):
        reference = _separately(model, initial, loss, make(), data, epochs=2)
        _assert_same_weights(trainer.replica_weights(k), reference, atol=1e-4)
        assert results[k].status == "completed" and results[k].steps == 12


def test_replicas_start_from_their_own_weights():
    x, y = blobs()
    model = mlp()
    starts = [mlp(seed=s).get_weights() for s in range(3)]
    trainable = [w for w in starts]  # the Sequential MLP has no non-trainable weights
    losses = ["cross_entropy"] * 3
    trainer = PopulationTrainer(model, losses, "sgd", initial_weights=trainable)
    for k in range(3):
        _assert_same_weights(trainer.replica_weights(k), starts[k], atol=0)
    trainer.fit(dataset(x, y), steps=2, verbose=0)
    for k in range(3):
        reference = _separately(model, starts[k], "cross_entropy", "sgd", dataset(x, y), steps=2)
        _assert_same_weights(trainer.replica_weights(k), reference)


@pytest.mark.parametrize("family", ["taylor_glo", "mixed"])
def test_replicas_on_their_own_streams_equal_copies_trained_on_those_streams(family):
    # Two streams (different data, sparse labels in one of them), three replicas: replica k
    # must train and be validated on stream streams[k] exactly as a copy trained alone on it.
    streams = [1, 0, 1]
    splits = [(blobs(seed=1), blobs(n=40, seed=3)), (blobs(seed=2), blobs(n=40, seed=4))]
    if family == "mixed":
        splits = [[(x, np.argmax(y, axis=1).astype("int32")) for x, y in s] for s in splits]
        losses = [
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            Baikal(from_logits=True),
        ]
    else:
        losses = [TaylorGLO(theta, from_logits=True) for theta in THETAS]
    train = [dataset(*fit) for fit, _ in splits]
    validation = [dataset(*held_out) for _, held_out in splits]
    model = mlp()
    starts = [mlp(seed=s).get_weights() for s in range(3)]
    make = _optimizers()["momentum"]
    trainer = PopulationTrainer(model, losses, make(), initial_weights=starts, streams=streams)
    results = trainer.fit(train, epochs=2, validation=validation, verbose=0)
    for k, loss in enumerate(losses):
        stream = streams[k]
        reference = _separately(model, starts[k], loss, make(), train[stream], epochs=2)
        _assert_same_weights(trainer.replica_weights(k), reference, atol=1e-4)
        copy = keras.models.clone_model(model)
        copy.set_weights(reference)
        logits = np.concatenate([copy(x).numpy() for x, _ in validation[stream]])
        labels = np.concatenate([y.numpy() for _, y in validation[stream]])
        classes = labels if labels.ndim == 1 else labels.argmax(1)
        expected = float(np.mean(logits.argmax(1) == classes))
        assert results[k].history["val_accuracy"][-1] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("streams", [[0, 2, 2], [0, 1], [0, -1, 1], "01", [0, True, 1]])
def test_bad_streams_name_themselves(streams):
    with pytest.raises(ValueError, match="argument `streams`"):
        PopulationTrainer(mlp(), ["cross_entropy"] * 3, streams=streams)


def test_with_streams_fit_needs_one_dataset_per_stream():
    trainer = PopulationTrainer(mlp(), ["cross_entropy"] * 2, streams=[0, 1])
    with pytest.raises(ValueError, match="argument `train`"):
        trainer.fit(dataset(*blobs()), epochs=1, verbose=0)
    with pytest.raises(ValueError, match="argument `data`"):
        trainer.evaluate([dataset(*blobs())])


def _convnet(dimensions: int) -> keras.Model:
    keras.utils.set_random_seed(1)
    shape = (12, 2) if dimensions == 1 else (8, 8, 2)
    conv = keras.layers.Conv1D if dimensions == 1 else keras.layers.Conv2D
    pool = keras.layers.MaxPooling1D if dimensions == 1 else keras.layers.MaxPooling2D
    inputs = keras.Input(shape)
    h = conv(4, 3, strides=2, padding="same", activation="relu")(inputs)
    h = conv(5, 3, activation="relu")(h)
    h = pool(2)(h)
    h = keras.layers.Flatten()(h)
    return keras.Model(inputs, keras.layers.Dense(3)(h))


@pytest.mark.parametrize("convolutions", ["grouped", "patches"])
@pytest.mark.parametrize("dimensions", [1, 2])
def test_convolutions_grouped_or_as_patches_match_the_model(dimensions, convolutions):
    model = _convnet(dimensions)
    starts = [[w * (1 + 0.3 * k) for w in model.get_weights()] for k in range(3)]
    graph = PopulationGraph(model, 3, starts, convolutions=convolutions)
    x = np.random.default_rng(0).normal(size=(5, *model.input_shape[1:])).astype("float32")
    logits = graph(tf.constant(x), training=False).numpy()
    for k in range(3):
        model.set_weights(starts[k])
        np.testing.assert_allclose(logits[k], model(x).numpy(), atol=1e-5, rtol=1e-5)


def test_layers_with_state_run_unrolled_with_per_replica_state():
    keras.utils.set_random_seed(2)
    inputs = keras.Input((6,))
    h = keras.layers.Dense(8)(inputs)
    h = keras.layers.BatchNormalization(momentum=0.5)(h)
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Activation("relu")(h)))
    initial = model.get_weights()
    x, y = blobs()
    losses = [TaylorGLO(t, from_logits=True) for t in THETAS[:2]]
    trainer = PopulationTrainer(model, losses, keras.optimizers.SGD(0.05, momentum=0.9))
    trainer.fit(dataset(x, y), steps=3, verbose=0)
    for k, loss in enumerate(losses):
        copy = keras.models.clone_model(model)
        copy.set_weights(initial)
        Trainer(copy, loss, keras.optimizers.SGD(0.05, momentum=0.9)).fit(
            dataset(x, y), steps=3, verbose=0
        )
        replica = trainer.replica_model(k)  # weights and moving statistics of replica k
        _assert_same_weights(replica.get_weights(), copy.get_weights())


def test_one_diverging_replica_does_not_disturb_the_others():
    x, y = blobs()
    data = dataset(x, y)
    model = mlp()
    initial = model.get_weights()
    losses = ["cross_entropy", _inf_loss, TaylorGLO(THETAS[0], from_logits=True)]
    trainer = PopulationTrainer(model, losses, keras.optimizers.SGD(0.1, momentum=0.9))
    results = trainer.fit(data, epochs=2, validation=data, verbose=0)
    assert [r.status for r in results] == ["completed", "diverged", "completed"]
    diverged = results[1]
    # As alone: the non-finite step is not taken (the Trainer counts it neither).
    assert diverged.steps == 0 and diverged.epochs == 0 and diverged.history == {}
    assert "step 1 (epoch 1)" in diverged.message and "not taken" in diverged.message
    # Its weights are those of its last finite step: the initial ones.
    _assert_same_weights(trainer.replica_weights(1), initial, atol=0)
    for k in (0, 2):
        reference = _separately(
            model, initial, losses[k], keras.optimizers.SGD(0.1, momentum=0.9), data, epochs=2
        )
        _assert_same_weights(trainer.replica_weights(k), reference, atol=1e-4)
        assert len(results[k].history["val_accuracy"]) == 2
        assert all(math.isfinite(v) for v in results[k].history["loss"])


class _StopAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch, self.seen = epoch, []

    def on_epoch_end(self, epoch, logs=None):
        self.seen.append(dict(logs))
        if epoch + 1 == self.epoch:
            self.model.stop_training = True


def test_a_callback_stops_its_replica_alone_and_freezes_it():
    x, y = blobs()
    data = dataset(x, y)
    model = mlp()
    initial = model.get_weights()
    stop, watch = _StopAfter(1), _StopAfter(99)
    trainer = PopulationTrainer(model, ["cross_entropy", "cross_entropy"], "sgd")
    results = trainer.fit(data, epochs=3, validation=data, callbacks=[[stop], [watch]], verbose=0)
    assert results[0].status == "stopped" and results[0].epochs == 1 and results[0].steps == 6
    assert results[1].status == "completed" and results[1].epochs == 3
    assert len(stop.seen) == 1 and len(watch.seen) == 3
    assert set(watch.seen[0]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    # Frozen at the end of its first epoch, although the population trained on.
    reference = _separately(model, initial, "cross_entropy", "sgd", data, epochs=1)
    _assert_same_weights(trainer.replica_weights(0), reference)
    np.testing.assert_allclose(
        watch.seen[0]["val_accuracy"], stop.seen[0]["val_accuracy"], atol=1e-9
    )


def test_evaluate_reports_each_replica():
    x, y = blobs()
    model = mlp()
    trainer = PopulationTrainer(
        model,
        [keras.losses.CategoricalCrossentropy(from_logits=True)] * 2,
        initial_weights=[model.get_weights(), [w * 0 for w in model.get_weights()]],
    )
    first, zero = trainer.evaluate(dataset(x, y))
    model.compile(loss=keras.losses.CategoricalCrossentropy(from_logits=True), metrics=["acc"])
    loss, accuracy = model.evaluate(x, y, verbose=0)
    assert first["loss"] == pytest.approx(loss, rel=1e-5)
    assert first["accuracy"] == pytest.approx(accuracy)
    assert zero["loss"] == pytest.approx(math.log(3), rel=1e-6)  # uniform logits


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"losses": []}, "losses"),
        ({"losses": "cross_entropy"}, "losses"),
        ({"optimizer": keras.optimizers.SGD(0.1, global_clipnorm=1.0)}, "optimizer"),
        ({"optimizer": 3}, "optimizer"),
        ({"initial_weights": [[]]}, "initial_weights"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, argument):
    arguments = {"losses": ["cross_entropy"] * 2, **kwargs}
    with pytest.raises(ValueError, match=f"argument `{argument}`"):
        PopulationTrainer(mlp(), **arguments)


def test_bad_model_callbacks_and_index_name_themselves():
    inputs = keras.Input((6,))
    regularized = keras.Model(inputs, keras.layers.Dense(3, kernel_regularizer="l2")(inputs))
    regularized(np.zeros((1, 6), "float32"))
    with pytest.raises(ValueError, match="argument `model`"):
        PopulationTrainer(regularized, ["cross_entropy"])
    trainer = PopulationTrainer(mlp(), ["cross_entropy"] * 2)
    x, y = blobs()
    with pytest.raises(ValueError, match="argument `callbacks`"):
        trainer.fit(dataset(x, y), epochs=1, callbacks=[[]])
    with pytest.raises(ValueError, match="argument `index`"):
        trainer.replica_weights(2)


def test_convolutions_compile_for_any_batch_size():
    # Traced with the batch axis left open, as the trainer traces its steps.
    model = _convnet(2)
    for convolutions in ("grouped", "patches"):
        graph = PopulationGraph(model, 2, convolutions=convolutions)
        forward = tf.function(lambda x, graph=graph: graph(x, training=True))
        spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
        x = tf.zeros([3, *model.input_shape[1:]])
        assert forward.get_concrete_function(spec)(x).shape == (2, 3, 3)


@pytest.mark.parametrize("dimensions", [1, 2])
def test_without_xla_a_convnet_population_trains_and_equals_separate_copies(dimensions):
    # Grouped convolutions where the device differentiates them, patches where it cannot
    # (TensorFlow's CPU filter gradient rejects grouped filters on many builds).
    model = _convnet(dimensions)
    initial = model.get_weights()
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, *model.input_shape[1:])).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 40)]
    losses = [TaylorGLO(t, from_logits=True) for t in THETAS[:2]]
    trainer = PopulationTrainer(model, losses, "sgd")
    trainer.fit(dataset(x, y), epochs=1, verbose=0)
    for k, loss in enumerate(losses):
        reference = _separately(model, initial, loss, "sgd", dataset(x, y))
        _assert_same_weights(trainer.replica_weights(k), reference)


def test_under_xla_a_convnet_population_equals_separate_copies():
    model = _convnet(1)
    initial = model.get_weights()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 12, 2)).astype("float32")
    y = np.eye(3, dtype="float32")[rng.integers(0, 3, 40)]
    losses = [TaylorGLO(t, from_logits=True) for t in THETAS[:2]]
    trainer = PopulationTrainer(model, losses, "sgd", jit_compile=True)
    trainer.fit(dataset(x, y), epochs=1, verbose=0)  # batches of 16, 16 and 8
    for k, loss in enumerate(losses):
        reference = _separately(model, initial, loss, "sgd", dataset(x, y))
        _assert_same_weights(trainer.replica_weights(k), reference)


def test_dropout_runs_folded_and_is_off_when_evaluating():
    keras.utils.set_random_seed(3)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dropout(0.5)(keras.layers.Dense(16, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(hidden))
    x, y = blobs()
    trainer = PopulationTrainer(model, ["cross_entropy"] * 2, "sgd")
    results = trainer.fit(dataset(x, y), epochs=1, verbose=0)
    assert all(r.status == "completed" for r in results)
    # Without training, dropout is the identity: replica k's logits are its model's.
    logits = trainer.population(tf.constant(x[:5]), training=False).numpy()
    for k in range(2):
        np.testing.assert_allclose(logits[k], trainer.replica_model(k)(x[:5]), atol=1e-5)


def test_dropout_masks_are_those_each_replica_draws_alone():
    keras.utils.set_random_seed(4)
    inputs = keras.Input((6,))
    hidden = keras.layers.Dropout(0.3, seed=7)(keras.layers.Dense(16, activation="relu")(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3)(hidden))
    initial = model.get_weights()
    x, y = blobs()
    losses = [TaylorGLO(t, from_logits=True) for t in THETAS[:2]]
    trainer = PopulationTrainer(model, losses, "sgd")
    trainer.fit(dataset(x, y), steps=3, verbose=0)
    for k, loss in enumerate(losses):
        keras.utils.set_random_seed(4)
        copy = keras.models.clone_model(model)  # its Dropout has the same seed
        copy.set_weights(initial)
        Trainer(copy, loss, "sgd").fit(dataset(x, y), steps=3, verbose=0)
        _assert_same_weights(trainer.replica_weights(k), copy.get_weights())


def _with_state(layer: keras.layers.Layer, seed: int = 5) -> keras.Model:
    """Dense(8), ``layer``, ReLU, Dense(3): the layer sees activations that differ by replica."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6,))
    h = layer(keras.layers.Dense(8)(inputs))
    return keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Activation("relu")(h)))


def test_state_without_weights_stays_per_replica():
    # Moving statistics but no trainable weights: folded into one batch, the replicas would
    # share batch statistics and moving averages.
    model = _with_state(keras.layers.BatchNormalization(center=False, scale=False, momentum=0.5))
    initial = model.get_weights()  # the moving statistics too
    x, y = blobs()
    losses = [TaylorGLO(t, from_logits=True) for t in THETAS[:2]]
    trainer = PopulationTrainer(model, losses, keras.optimizers.SGD(0.05, momentum=0.9))
    trainer.fit(dataset(x, y), epochs=1, verbose=0)
    moving_means = []
    for k, loss in enumerate(losses):
        copy = keras.models.clone_model(model)
        copy.set_weights(initial)
        Trainer(copy, loss, keras.optimizers.SGD(0.05, momentum=0.9)).fit(
            dataset(x, y), epochs=1, verbose=0
        )
        replica = trainer.replica_model(k)  # weights and moving statistics of replica k
        _assert_same_weights(replica.get_weights(), copy.get_weights())
        moving_means.append(replica.layers[2].moving_mean.numpy())
    assert np.abs(moving_means[0] - moving_means[1]).max() > 1e-3


def test_a_stopped_replica_keeps_its_moving_statistics():
    model = _with_state(keras.layers.BatchNormalization(center=False, scale=False, momentum=0.5))
    initial = model.get_weights()
    x, y = blobs()
    trainer = PopulationTrainer(model, ["cross_entropy"] * 2, "sgd")
    trainer.fit(dataset(x, y), epochs=3, callbacks=[[_StopAfter(1)], []], verbose=0)
    copy = keras.models.clone_model(model)
    copy.set_weights(initial)
    Trainer(copy, "cross_entropy", "sgd").fit(dataset(x, y), epochs=1, verbose=0)
    # Frozen after one epoch, although its forward pass ran on for two more.
    _assert_same_weights(trainer.replica_model(0).get_weights(), copy.get_weights())


def test_random_layers_draw_what_each_replica_draws_alone():
    # A seed generator (not plain Dropout): each replica advances its own copy of the state.
    model = _with_state(keras.layers.GaussianNoise(0.5, seed=7))
    initial = model.get_weights()
    x, y = blobs()
    losses = [TaylorGLO(t, from_logits=True) for t in THETAS[:2]]
    trainer = PopulationTrainer(model, losses, "sgd")
    trainer.fit(dataset(x, y), steps=3, verbose=0)
    for k, loss in enumerate(losses):
        copy = keras.models.clone_model(model)  # its GaussianNoise has the same seed
        copy.set_weights(initial)
        Trainer(copy, loss, "sgd").fit(dataset(x, y), steps=3, verbose=0)
        _assert_same_weights(trainer.replica_weights(k), copy.trainable_weights)


class _CallCounter(keras.layers.Layer):
    """Counts its calls in a TensorFlow variable that Keras does not track."""

    def build(self, input_shape):
        self.calls = tf.Variable(0, trainable=False)

    def call(self, inputs):
        self.calls.assign_add(1)
        return inputs


def test_state_keras_does_not_track_is_refused():
    model = _with_state(_CallCounter(name="counter"))
    with pytest.raises(ValueError, match=r"argument `model`.*layer 'counter'.*TensorFlow variable"):
        PopulationTrainer(model, ["cross_entropy"] * 2)
