"""robust_accuracy: FGSM by hand, clean accuracy at ε = 0, monotone curves, bad input."""

import itertools
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from metaloss.analysis.robustness import default_clip, robust_accuracy
from metaloss.losses import Baikal

from ..conftest import run_python


def tiny_problem(seed=0):
    """A random 3-class linear-tanh model on inputs in [0, 1]."""
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.Input((6,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(3)]
    )
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(40, 6)).astype("float32")
    y = rng.integers(0, 3, size=40)
    return model, x, y


def hand_fgsm(model, x, y, eps, loss):
    """x' = clip(x + ε sign(∇_x L(y, f(x))), 0, 1), the gradient by GradientTape."""
    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = tf.reduce_sum(loss(y, model(x)))
    return np.clip(x.numpy() + eps * np.sign(tape.gradient(value, x).numpy()), 0, 1)


def accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=-1) == y))


@pytest.mark.parametrize(
    ("gradient_loss", "loss"),
    [
        (
            "cross_entropy",
            lambda y, z: keras.losses.sparse_categorical_crossentropy(y, z, from_logits=True),
        ),
        ("baikal", lambda y, z: Baikal(from_logits=True, reduction=None)(y, z)),
    ],
)
def test_fgsm_equals_the_hand_computed_attack(gradient_loss, loss):
    from cleverhans.tf2.attacks.fast_gradient_method import fast_gradient_method

    model, x, y = tiny_problem()
    for eps in (0.05, 0.2):
        expected = hand_fgsm(model, x, y, eps, loss)
        if gradient_loss == "cross_entropy":  # cleverhans's own perturbation, the same one
            adversarial = fast_gradient_method(model, x, eps, np.inf, clip_min=0, clip_max=1, y=y)
            np.testing.assert_allclose(adversarial.numpy(), expected, atol=1e-6)
        result = robust_accuracy(model, (x, y), eps=[eps], gradient_loss=gradient_loss)
        assert result[eps] == pytest.approx(accuracy(model, expected, y))


def trained_digits_model():
    import metaloss

    keras.utils.set_random_seed(0)
    data = metaloss.data.load("digits", batch_size=64)
    model = metaloss.models.get(
        "mlp",
        data.input_shape,
        data.num_classes,
        normalization=(data.channel_mean, data.channel_std),
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True),
    )
    model.fit(data.train, epochs=8, verbose=0, shuffle=False)  # the pipeline shuffles
    return model, data


def test_clean_accuracy_at_zero_and_non_increasing_fgsm_curve_on_a_trained_model():
    model, data = trained_digits_model()
    x, y = data.arrays("test")
    clean = accuracy(model, x, y)
    assert clean > 0.8
    curve = robust_accuracy(model, data.test)  # one-hot labels from the pipeline
    assert list(curve) == [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
    assert curve[0.0] == pytest.approx(clean)
    values = list(curve.values())
    assert all(b <= a for a, b in itertools.pairwise(values))
    assert values[-1] < 0.5 * clean
    arrays = robust_accuracy(model, (x, y), eps=[0.0, 0.1], batch_size=100)
    assert arrays == {0.0: curve[0.0], 0.1: curve[0.1]}
    pgd = robust_accuracy(model, (x, y), attack="pgd", eps=[0.0, 0.1], steps=7, step_size=0.03)
    assert pgd[0.0] == pytest.approx(clean)
    assert pgd[0.1] <= curve[0.1] + 0.01  # iterating finds at least what one step finds


@pytest.mark.parametrize(
    ("kwargs", "argument"),
    [
        ({"eps": [0.1, -0.05]}, "eps"),
        ({"eps": [float("nan")]}, "eps"),
        ({"eps": []}, "eps"),
        ({"attack": "pgd", "eps": [0.1], "step_size": 0.2}, "step_size"),
        ({"attack": "cw"}, "attack"),
        ({"norm": 3}, "norm"),
        ({"attack": "pgd", "norm": 1}, "norm"),
        ({"steps": 0, "attack": "pgd"}, "steps"),
        ({"clip": (1.0, 0.0)}, "clip"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, argument):
    model, x, y = tiny_problem()
    with pytest.raises(ValueError, match=f"`{argument}`"):
        robust_accuracy(model, (x, y), **kwargs)


def test_data_must_be_a_pair_or_a_dataset():
    model, x, _ = tiny_problem()
    with pytest.raises(ValueError, match="`data`"):
        robust_accuracy(model, x, eps=[0.1])


def test_missing_cleverhans_names_the_extra(monkeypatch):
    model, x, y = tiny_problem()
    monkeypatch.setitem(sys.modules, "cleverhans.tf2.attacks.fast_gradient_method", None)
    with pytest.raises(ImportError, match=r"adversarial"):
        robust_accuracy(model, (x, y), eps=[0.1])


def test_attacks_never_import_tensorflow_probability():
    code = """
import sys, numpy as np, keras
from metaloss.analysis.robustness import robust_accuracy
model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
robust_accuracy(model, (np.zeros((4, 3), "float32"), np.zeros(4, "int64")), eps=[0.1])
robust_accuracy(model, (np.zeros((4, 3), "float32"), np.zeros(4, "int64")), attack="pgd", eps=[0.1])
print("tensorflow_probability" in sys.modules)
"""
    assert run_python(code).strip().splitlines()[-1] == "False"


def test_default_clip_is_the_pixel_range_for_images_only():
    assert default_clip((32, 32, 3)) == (0.0, 1.0)
    assert default_clip((40,)) is None
