"""AdaLFL: the meta-gradient against finite differences, the online and offline phases."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from metaloss.losses import LearnedLoss
from metaloss.search.online import AdaLFL, online_fit
from metaloss.training import Trainer

from ..training.helpers import blobs, dataset, mlp


@pytest.fixture
def float64():
    """Keras's floatx and dtype policy at float64 (the policy would otherwise win)."""
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield
    keras.config.set_floatx(floatx)
    keras.config.set_dtype_policy(policy)


def tiny_batches(seed=0, regression=False):
    """A training and a meta batch of a 4-feature, 3-output problem (float64)."""
    rng = np.random.default_rng(seed)
    x, x_meta = rng.normal(size=(2, 8, 4))
    if regression:
        return (x, rng.normal(size=(8, 3))), (x_meta, rng.normal(size=(8, 3)))
    return (x, rng.integers(0, 3, 8)), (x_meta, rng.integers(0, 3, 8))


def tiny_model():
    keras.utils.set_random_seed(3)
    layers = [keras.Input((4,)), keras.layers.Dense(5, activation="tanh"), keras.layers.Dense(3)]
    return keras.Sequential(layers)


def real_step_meta_objective(model, optimizer, loss, phi, batch, meta_batch, regression):
    """``L_T`` after one *real* Keras optimizer step with the loss network at ``phi``.

    Built independently of metaloss's unrolled update: a copy of the model, a copy of the
    optimizer holding the same slots, ``GradientTape`` and ``apply_gradients``.
    """
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    optimizer_copy = optimizer.__class__.from_config(optimizer.get_config())
    optimizer_copy.build(copy.trainable_variables)
    for target, source in zip(optimizer_copy.variables, optimizer.variables, strict=True):
        target.assign(source)
    probe = LearnedLoss.from_config({**loss.get_config(), "weights": [p.tolist() for p in phi]})
    (x, y), (x_meta, y_meta) = batch, meta_batch
    with tf.GradientTape() as tape:
        value = probe(y, copy(x, training=True))
    gradients = tape.gradient(value, copy.trainable_variables)
    optimizer_copy.apply_gradients(zip(gradients, copy.trainable_variables, strict=True))
    outputs = copy(x_meta).numpy()
    if regression:
        return np.mean((outputs - y_meta) ** 2)
    log_softmax = outputs - np.log(np.exp(outputs).sum(-1, keepdims=True))
    return -np.mean(log_softmax[np.arange(len(y_meta)), y_meta])


OPTIMIZERS = {
    "sgd_momentum": lambda: keras.optimizers.SGD(0.3, momentum=0.9),
    "sgd_nesterov_decay": lambda: keras.optimizers.SGD(
        0.2, momentum=0.5, nesterov=True, weight_decay=0.01
    ),
    "adam": lambda: keras.optimizers.Adam(0.05),
}


@pytest.mark.parametrize(
    ("name", "regression"),
    [("sgd_momentum", False), ("sgd_nesterov_decay", False), ("adam", False), ("adam", True)],
)
def test_meta_gradient_matches_central_finite_differences(float64, name, regression):
    model = tiny_model()
    task = "regression" if regression else "classification"
    loss = LearnedLoss(hidden_units=(6, 6), seed=1, task=task, from_logits=True)
    optimizer = OPTIMIZERS[name]()
    adalfl = AdaLFL(model, loss, optimizer, seed=0)
    rng = np.random.default_rng(5)
    for _ in range(2):  # non-zero momenta / velocities and iteration count
        noise = [rng.normal(size=v.shape) * 0.1 for v in model.trainable_variables]
        optimizer.apply_gradients(zip(noise, model.trainable_variables, strict=True))
    batch, meta_batch = tiny_batches(regression=regression)
    meta_loss, gradient = adalfl.meta_gradient(*batch, *meta_batch)
    phi = loss.get_weights()
    assert meta_loss.numpy() == pytest.approx(
        real_step_meta_objective(model, optimizer, loss, phi, batch, meta_batch, regression),
        rel=1e-10,
    )
    h = 1e-5
    for _ in range(3):  # directional derivatives along random directions of all of φ
        direction = [rng.normal(size=p.shape) for p in phi]
        plus, minus = (
            real_step_meta_objective(
                model,
                optimizer,
                loss,
                [p + sign * h * d for p, d in zip(phi, direction, strict=True)],
                batch,
                meta_batch,
                regression,
            )
            for sign in (1, -1)
        )
        numeric = (plus - minus) / (2 * h)
        analytic = sum(np.sum(g.numpy() * d) for g, d in zip(gradient, direction, strict=True))
        assert analytic == pytest.approx(numeric, rel=1e-6, abs=1e-10)


def plain_step_meta_objective(model, loss, phi, batch, meta_batch, inner_lr):
    """``L_T`` after ML3's inner step ``θ' = θ - α ∇_θ M_φ``, computed with a model copy."""
    probe = LearnedLoss.from_config({**loss.get_config(), "weights": [p.tolist() for p in phi]})
    return probe_step_meta_objective(model, probe, batch, meta_batch, inner_lr)


def probe_step_meta_objective(model, probe, batch, meta_batch, inner_lr):
    """Cross-entropy after one plain step ``θ - α ∇_θ probe``, on a copy of ``model``."""
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    (x, y), (x_meta, y_meta) = batch, meta_batch
    with tf.GradientTape() as tape:
        value = probe(y, copy(x, training=True))
    gradients = tape.gradient(value, copy.trainable_variables)
    for variable, gradient in zip(copy.trainable_variables, gradients, strict=True):
        variable.assign(variable - inner_lr * gradient)
    outputs = copy(x_meta).numpy()
    log_softmax = outputs - np.log(np.exp(outputs).sum(-1, keepdims=True))
    return -np.mean(log_softmax[np.arange(len(y_meta)), y_meta])


def test_default_offline_objective_matches_central_finite_differences(float64):
    # The default configuration: Adam as the base optimizer, yet the offline inner step is the
    # plain gradient step with inner_lr, whatever the base optimizer.
    model = tiny_model()
    loss = LearnedLoss(hidden_units=(6, 6), seed=1, from_logits=True)
    adalfl = AdaLFL(model, loss, seed=0, inner_lr=0.5)
    assert isinstance(adalfl.optimizer, keras.optimizers.Adam) and adalfl.offline_step == "sgd"
    batch, meta_batch = tiny_batches(seed=2)
    meta_loss, gradient = adalfl.offline_meta_gradient(*batch, *meta_batch)
    phi = loss.get_weights()
    assert meta_loss.numpy() == pytest.approx(
        plain_step_meta_objective(model, loss, phi, batch, meta_batch, 0.5), rel=1e-10
    )
    rng, h = np.random.default_rng(7), 1e-5
    for _ in range(3):
        direction = [rng.normal(size=p.shape) for p in phi]
        plus, minus = (
            plain_step_meta_objective(
                model,
                loss,
                [p + sign * h * d for p, d in zip(phi, direction, strict=True)],
                batch,
                meta_batch,
                0.5,
            )
            for sign in (1, -1)
        )
        analytic = sum(np.sum(g.numpy() * d) for g, d in zip(gradient, direction, strict=True))
        assert analytic == pytest.approx((plus - minus) / (2 * h), rel=1e-6, abs=1e-10)
    # The fresh-optimizer variant is a different objective (one Adam step from zero slots).
    fresh = AdaLFL(model, loss, seed=0, offline_step="fresh_optimizer")
    fresh_loss, _ = fresh.offline_meta_gradient(*batch, *meta_batch)
    assert fresh_loss.numpy() != pytest.approx(meta_loss.numpy(), rel=1e-6)


def test_zero_meta_learning_rate_equals_plain_training_with_the_initial_loss():
    x, y = blobs(n=64)
    train = dataset(x, y)
    model, plain_model = mlp(seed=1), mlp(seed=1)
    loss = LearnedLoss(seed=2, from_logits=True)
    plain_loss = LearnedLoss.from_config(loss.get_config())
    adalfl = AdaLFL(
        model,
        loss,
        keras.optimizers.SGD(0.1, momentum=0.9),
        meta_optimizer=keras.optimizers.Adam(0.0),
    )
    result = adalfl.fit(train, epochs=3, verbose=0)
    plain = Trainer(plain_model, plain_loss, keras.optimizers.SGD(0.1, momentum=0.9))
    expected = plain.fit(train, epochs=3, verbose=0)
    for got, want in zip(model.get_weights(), plain_model.get_weights(), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.history["loss"], expected.history["loss"], rtol=1e-5)
    for got, want in zip(loss.get_weights(), plain_loss.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)


def test_online_step_applies_the_meta_gradient_of_the_next_batch():
    x, y = blobs(n=64)
    train = dataset(x, y)
    model = mlp(seed=1)
    loss = LearnedLoss(seed=2, from_logits=True)
    adalfl = AdaLFL(model, loss, "sgd", meta_optimizer=keras.optimizers.SGD(0.5))
    before = loss.get_weights()
    # The meta batch of the first step is the training stream one batch ahead.
    _, gradient = adalfl.meta_gradient(x[:16], y[:16], x[16:32], y[16:32])
    adalfl.fit(train, steps=1, verbose=0)
    for got, start, g in zip(loss.get_weights(), before, gradient, strict=True):
        np.testing.assert_allclose(got, start - 0.5 * g.numpy(), rtol=1e-5, atol=1e-7)


def test_offline_phase_moves_the_loss_network_and_lowers_the_meta_objective():
    x, y = blobs(n=64)
    model = mlp(seed=1)
    weights = model.get_weights()
    loss = LearnedLoss(seed=2, from_logits=True)
    before = loss.get_weights()
    adalfl = AdaLFL(
        model,
        loss,
        keras.optimizers.SGD(0.1),
        meta_optimizer=keras.optimizers.Adam(0.01),
        reset="initial",
    )
    result = adalfl.initialize(dataset(x, y), steps=40, verbose=0)
    assert result.status == "completed" and len(result.history["meta_loss"]) == 40
    meta = result.history["meta_loss"]
    assert np.mean(meta[-4:]) < np.mean(meta[:4])
    assert max(np.abs(a - b).max() for a, b in zip(loss.get_weights(), before, strict=True)) > 1e-3
    for got, want in zip(model.get_weights(), weights, strict=True):  # θ itself never moves
        np.testing.assert_array_equal(got, want)


def test_a_non_finite_offline_step_changes_nothing():
    # Batch 3 holds a NaN: offline step 3 uses it as its meta batch (the batch after batch 2).
    x, y = blobs(n=80)
    x[50] = np.nan

    def offline(data, steps):
        loss = LearnedLoss(seed=2, from_logits=True)
        adalfl = AdaLFL(mlp(seed=1), loss, "sgd", meta_optimizer=keras.optimizers.Adam(0.05))
        result = adalfl.initialize(data, steps=steps, verbose=0)
        state = [v.numpy() for v in [*loss.trainable_variables, *adalfl.meta_optimizer.variables]]
        return result, state

    result, state = offline(dataset(x, y), steps=6)
    assert result.status == "diverged" and result.steps == 2 and "step 3" in result.message
    # The reference: the first two steps alone. (With an Adam meta-optimizer, a zero gradient
    # applied at step 3 would still move φ and count an iteration.)
    _, reference = offline(dataset(x, y), steps=2)
    for got, want in zip(state, reference, strict=True):
        np.testing.assert_array_equal(got, want)


def test_xla_compiled_offline_phase_equals_the_uncompiled_one():
    """XLA has no kernel for the shuffle reset: it runs outside the XLA-compiled step."""
    x, y = blobs(n=64)

    def offline(jit_compile):
        loss = LearnedLoss(seed=2, from_logits=True)
        adalfl = AdaLFL(mlp(seed=1), loss, "sgd", seed=3, jit_compile=jit_compile)
        result = adalfl.initialize(dataset(x, y), steps=5, verbose=0)
        return result.history["meta_loss"], loss.get_weights()

    (meta_xla, phi_xla), (meta, phi) = offline(True), offline(False)
    np.testing.assert_allclose(meta_xla, meta, rtol=1e-4)
    for got, want in zip(phi_xla, phi, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)


def test_shuffle_resets_draw_permutations_of_the_initial_weights():
    model = mlp(seed=1)
    adalfl = AdaLFL(model, LearnedLoss(seed=0, from_logits=True), seed=4)
    adalfl._offline_steps.assign(7)
    initial = model.trainable_variables[0]
    first = adalfl._reset_value(tf.convert_to_tensor(initial), 0).numpy()
    np.testing.assert_array_equal(np.sort(first, axis=None), np.sort(initial.numpy(), axis=None))
    assert not np.array_equal(first, initial.numpy())
    adalfl._offline_steps.assign(8)
    assert not np.array_equal(adalfl._reset_value(tf.convert_to_tensor(initial), 0), first)


def test_online_fit_runs_both_phases_and_keeps_snapshots():
    x, y = blobs(n=96)
    model = mlp(seed=0)
    result = online_fit(
        model,
        dataset(x, y),
        epochs=2,
        init_steps=5,
        validation=dataset(x, y),
        optimizer=keras.optimizers.Adam(0.01),
        snapshot_steps=[0, 3, 12],
        seed=0,
        verbose=0,
    )
    assert result.status == "completed" and result.steps == 12
    assert [s.step for s in result.snapshots] == [0, 3, 12]
    assert {"loss", "accuracy", "meta_loss", "val_loss", "val_accuracy"} <= set(result.history)
    assert len(result.initialization.history["meta_loss"]) == 5
    final = result.snapshots[-1].loss()
    for got, want in zip(final.get_weights(), result.loss.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert result.to_dict()["loss"]["hidden_units"] == [40, 40]


def test_non_finite_learned_loss_stops_and_the_bad_step_changes_nothing():
    x, y = blobs(n=64)
    model = mlp(seed=1)
    loss = LearnedLoss(seed=2, from_logits=True)
    start = loss.get_weights()
    # A meta step this large sends the loss network towards infinity with the first update;
    # the second step is then non-finite.
    adalfl = AdaLFL(
        model, loss, keras.optimizers.Adam(0.01), meta_optimizer=keras.optimizers.SGD(1e35)
    )
    after_first = []

    class AfterFirstStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if not after_first:
                after_first.append(
                    [v.numpy().copy() for v in [*loss.trainable_variables, *model.variables]]
                    + [v.numpy().copy() for v in adalfl.optimizer.variables]
                    + [v.numpy().copy() for v in adalfl.meta_optimizer.variables]
                )

    result = adalfl.fit(dataset(x, y), epochs=3, callbacks=[AfterFirstStep()], verbose=0)
    assert result.status == "diverged" and "non-finite" in result.message
    assert result.steps == 1 and int(adalfl.optimizer.iterations.numpy()) == 1
    now = (
        [v.numpy() for v in [*loss.trainable_variables, *model.variables]]
        + [v.numpy() for v in adalfl.optimizer.variables]
        + [v.numpy() for v in adalfl.meta_optimizer.variables]
    )
    for got, want in zip(now, after_first[0], strict=True):
        np.testing.assert_array_equal(got, want)
    assert any(not np.array_equal(a, b) for a, b in zip(loss.get_weights(), start, strict=True))
    final = result.snapshots[-1]
    assert final.step == 1
    for got, want in zip(result.loss.get_weights(), loss.get_weights(), strict=True):
        np.testing.assert_array_equal(got, want)
    assert all(np.isfinite(w).all() for w in model.get_weights())


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"loss": keras.losses.CategoricalCrossentropy()}, "loss"),
        ({"optimizer": keras.optimizers.RMSprop()}, "optimizer"),
        ({"optimizer": "rmsprop"}, "optimizer"),
        ({"reset": "zeros"}, "reset"),
        ({"meta_objective": "hinge"}, "meta_objective"),
        ({"meta_optimizer": "adam"}, "meta_optimizer"),
        ({"inner_lr": 0.0}, "inner_lr"),
        ({"inner_lr": True}, "inner_lr"),
        ({"offline_step": "adam"}, "offline_step"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, argument):
    with pytest.raises(ValueError, match=f"`{argument}`"):
        AdaLFL(mlp(), **kwargs)


def test_invalid_budgets_and_snapshots_name_the_argument():
    x, y = blobs(n=32)
    with pytest.raises(ValueError, match="`init_steps`"):
        online_fit(mlp(), dataset(x, y), epochs=1, init_steps=-1)
    with pytest.raises(ValueError, match="`snapshot_steps`"):
        AdaLFL(mlp()).fit(dataset(x, y), epochs=1, snapshot_steps=[-2], verbose=0)
    with pytest.raises(ValueError, match="`steps`"):
        AdaLFL(mlp()).initialize(dataset(x, y), steps=0)


def test_named_base_optimizers_have_no_momentum():
    adam, sgd = AdaLFL(mlp()).optimizer, AdaLFL(mlp(), optimizer="sgd").optimizer
    assert isinstance(adam, keras.optimizers.Adam)
    assert float(adam.learning_rate) == pytest.approx(1e-3)
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == 0
