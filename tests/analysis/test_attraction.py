"""Attraction against NumPy closed forms and finite differences, and the tracker on real runs."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from metaloss.analysis.attraction import AttractionTracker, attraction, pushed_away
from metaloss.losses import Baikal
from metaloss.training import Trainer


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def entropy(z):
    p = softmax(z)
    return -np.sum(p * np.log(p), axis=-1)


def random_correct_samples(rng, n_samples, n_classes, scale):
    """Logits with the true class = the argmax (correctly classified), at a given scale."""
    z = rng.normal(0.0, scale, (n_samples, n_classes))
    return z, np.argmax(z, axis=-1)


def test_cross_entropy_matches_the_numpy_formula():
    # -∇_z CE = x - p and ∂H/∂z_k = -p_k (log p_k + H), written out by hand.
    rng = np.random.default_rng(0)
    z = rng.normal(0.0, 2.0, (20, 5))
    labels = rng.integers(0, 5, 20)
    p, x = softmax(z), np.eye(5)[labels]
    h = entropy(z)[:, None]
    expected = np.sum(-p * (np.log(p) + h) * (x - p), axis=-1)
    got = attraction("cross_entropy:from_logits=true", z, labels)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


def test_baikal_matches_finite_differences_of_the_entropy_along_its_flow():
    # Independent of autodiff: the flow -∇_z L by central differences of NumPy's Baikal, then
    # dH/dt ≈ (H(z + h·flow) - H(z - h·flow)) / 2h.
    def baikal(z, x):
        p = softmax(z)
        return -np.mean(np.log(p) - x / p, axis=-1)

    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 2.0, (8, 4))
    labels = rng.integers(0, 4, 8)
    x = np.eye(4)[labels]
    eps = 1e-6
    flow = np.zeros_like(z)
    for k in range(4):
        step = np.zeros_like(z)
        step[:, k] = eps
        flow[:, k] = -(baikal(z + step, x) - baikal(z - step, x)) / (2 * eps)
    expected = (entropy(z + eps * flow) - entropy(z - eps * flow)) / (2 * eps)
    got = attraction(Baikal(from_logits=True), z, labels)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-9)


@pytest.mark.parametrize("n_classes", [2, 3, 10])
@pytest.mark.parametrize("scale", [0.3, 3.0, 12.0])
def test_cross_entropy_never_pushes_a_correct_sample_away(n_classes, scale):
    z, labels = random_correct_samples(np.random.default_rng(n_classes), 400, n_classes, scale)
    assert not pushed_away("cross_entropy:from_logits=true", z, labels).any()
    values = attraction("cross_entropy:from_logits=true", z, labels)
    assert np.all(values <= 1e-12 * np.abs(values).max())


@pytest.mark.parametrize("n_classes", [3, 10])
def test_baikal_pushes_back_near_the_one_hot_target(n_classes):
    # Baikal's optimum for one sample is p_target = 1/√n (set dL/dp = 0): beyond it, pushed away;
    # well below it (but still correct), pulled.
    optimum = 1 / np.sqrt(n_classes)
    logit = lambda p: np.log(p * (n_classes - 1) / (1 - p))  # noqa: E731  p_target → logit gap
    labels = [0, 0]
    z = np.zeros((2, n_classes))
    z[0, 0], z[1, 0] = logit(min(0.99, optimum + 0.3)), logit((optimum + 1 / n_classes) / 2)
    assert pushed_away(Baikal(from_logits=True), z, labels).tolist() == [True, False]
    values = attraction(Baikal(from_logits=True), z, labels)
    assert values[0] > 0 > values[1]


def test_label_formats_and_probability_losses_agree():
    rng = np.random.default_rng(2)
    z = rng.normal(0.0, 2.0, (10, 3))
    labels = rng.integers(0, 3, 10)
    sparse = attraction("baikal:from_logits=true", z, labels)
    np.testing.assert_allclose(attraction("baikal:from_logits=true", z, labels[:, None]), sparse)
    np.testing.assert_allclose(attraction("baikal:from_logits=true", z, np.eye(3)[labels]), sparse)
    # A loss reading probabilities gets softmax(z): the same flow, up to clipping.
    np.testing.assert_allclose(attraction("baikal", z, labels), sparse, rtol=1e-6)
    # Keras's sparse loss wants ids, its categorical loss one-hot: both are handled.
    ce = attraction(keras.losses.SparseCategoricalCrossentropy(from_logits=True), z, labels)
    np.testing.assert_allclose(ce, attraction("cross_entropy:from_logits=true", z, labels))


def test_bad_input():
    with pytest.raises(ValueError, match="argument `logits`"):
        attraction("baikal", [1.0, 2.0], [0])
    with pytest.raises(ValueError, match="argument `labels`"):
        attraction("baikal", [[1.0, 2.0]], [0, 1])
    with pytest.raises(ValueError, match="argument `labels`"):
        attraction("baikal", [[1.0, 2.0]], [2])
    with pytest.raises(ValueError, match="argument `every`"):
        AttractionTracker(np.zeros((2, 2)), [0, 1], "baikal", every=0)


# -- the tracker on real training runs -------------------------------------------------------


def blobs(n=120, seed=0):
    """Three well-separated Gaussian blobs in 2-D: quickly learned to zero training error."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    centres = np.array([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0]])
    return (centres[labels] + rng.normal(0, 0.5, (n, 2))).astype("float32"), labels


def mlp():
    inputs = keras.Input((2,))
    hidden = keras.layers.Dense(16, activation="tanh")(inputs)
    return keras.Model(inputs, keras.layers.Dense(3)(hidden))


@pytest.mark.parametrize(
    ("loss", "pushes"),
    [(keras.losses.SparseCategoricalCrossentropy(from_logits=True), False), ("baikal", True)],
)
def test_tracker_under_the_metaloss_trainer(loss, pushes):
    x, y = blobs()
    loss = loss if not isinstance(loss, str) else Baikal(from_logits=True)
    tracker = AttractionTracker(x[:60], y[:60], loss, every=2)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(32)
    trainer = Trainer(mlp(), loss, keras.optimizers.SGD(0.1))
    trainer.fit(train, epochs=6, callbacks=[tracker], verbose=0)
    summary = tracker.summary()
    assert summary["epoch"] == [0, 2, 4, 6]
    assert summary["accuracy"][-1] == 1.0
    assert len(tracker.values[-1]) == 60
    if pushes:  # samples fitted past Baikal's optimum p = 1/√3 are pushed back (measured: 23%)
        assert summary["pushed_away_correct"][-1] > 0.1
    else:
        assert summary["pushed_away_correct"] == [0.0] * 4


def test_tracker_under_model_fit_uses_the_compiled_loss():
    x, y = blobs()
    model = mlp()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=Baikal(from_logits=True))
    tracker = AttractionTracker(x, y)
    model.fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[tracker])
    assert tracker.epochs == [0, 1, 2, 3]
    np.testing.assert_allclose(
        tracker.values[-1],
        attraction(Baikal(from_logits=True), model.predict(x, verbose=0), y),
        rtol=1e-4,  # float32 logits, batched differently by predict
        atol=1e-6,
    )


def test_tracker_without_a_loss_says_so():
    x, y = blobs(10)
    tracker = AttractionTracker(x, y)
    tracker.set_model(mlp())  # never compiled, and no loss given
    with pytest.raises(ValueError, match="argument `loss`"):
        tracker.on_train_begin()


def test_tracker_under_the_trainer_defaults_to_its_loss():
    x, y = blobs(30)
    tracker = AttractionTracker(x, y)
    trainer = Trainer(mlp(), Baikal(from_logits=True), keras.optimizers.SGD(0.1))
    trainer.fit(tf.data.Dataset.from_tensor_slices((x, y)).batch(10), epochs=1, callbacks=[tracker])
    expected = attraction(Baikal(from_logits=True), trainer.model(x), y)
    np.testing.assert_allclose(tracker.values[-1], expected, rtol=1e-6)
