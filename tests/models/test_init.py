"""Tests of the model registry: `metaloss.models.get`, `MODELS`, validation, normalization."""

import subprocess
import sys

import keras
import numpy as np
import pytest

import metaloss.models
from metaloss.models import MODELS, get

# A natural input shape for each model of the registry (kept small where the model allows it).
NATURAL_SHAPES = {
    "mlp": (40,),
    "cnn1d": (40,),
    "cnn": (8, 8, 1),
    "resnet20": (32, 32, 3),
    "resnet32": (32, 32, 3),
    "resnet56": (32, 32, 3),
    "preresnet20": (32, 32, 3),
    "wrn": (32, 32, 3),
    "allcnn_c": (32, 32, 3),
    "alexnet": (32, 32, 3),
}


@pytest.fixture(autouse=True)
def _seed():
    keras.utils.set_random_seed(0)


def _logits(model, x):
    return keras.ops.convert_to_numpy(model(x, training=False))


def _batch(shape, seed=0):
    return np.random.default_rng(seed).uniform(0.0, 1.0, (2, *shape)).astype("float32")


def test_models_lists_every_model_with_a_one_line_description():
    assert set(MODELS) == set(NATURAL_SHAPES)
    for name, description in MODELS.items():
        assert isinstance(description, str) and description, name
        assert "\n" not in description, name


@pytest.mark.slow  # Starts a subprocess.
def test_importing_the_package_does_not_import_keras():
    code = (
        "import sys, metaloss.models as m; "
        "assert m.MODELS; "
        "print('keras' in sys.modules, 'tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.split() == ["False", "False"]


@pytest.mark.parametrize("name", sorted(NATURAL_SHAPES))
def test_get_builds_a_named_model_that_outputs_float32_logits(name):
    shape = NATURAL_SHAPES[name]
    model = get(name, shape, 7)
    assert isinstance(model, keras.Model)
    assert model.name.startswith(name.rstrip("0123456789"))
    assert model.output_shape == (None, 7)
    logits = _logits(model, _batch(shape))
    assert logits.shape == (2, 7)
    assert logits.dtype == np.float32
    assert np.isfinite(logits).all()
    # Logits, not probabilities: some are negative and rows do not sum to 1.
    assert (logits < 0).any()
    assert not np.allclose(logits.sum(axis=1), 1.0)


def test_builders_are_reachable_from_the_package():
    from metaloss.models.resnet import build_resnet

    assert metaloss.models.build_resnet is build_resnet
    with pytest.raises(AttributeError):
        metaloss.models.build_nothing  # noqa: B018


def test_unknown_name_lists_the_known_names():
    expected = (
        f"Invalid value for argument `name`. Expected one of {list(MODELS)}. Received: name='foo'"
    )
    with pytest.raises(ValueError) as info:
        get("foo", (40,), 10)
    assert str(info.value) == expected


@pytest.mark.parametrize("input_shape", [(), (0, 3), (32, -1), (32.0,), (True,), "32", None, 32])
def test_bad_input_shape_is_rejected(input_shape):
    with pytest.raises(ValueError, match="Invalid value for argument `input_shape`"):
        get("mlp", input_shape, 10)


@pytest.mark.parametrize("num_classes", [1, 0, -3, 2.0, True, "10", None])
def test_bad_num_classes_is_rejected(num_classes):
    with pytest.raises(ValueError, match="Invalid value for argument `num_classes`"):
        get("mlp", (40,), num_classes)


def test_input_shape_may_be_a_list_or_numpy_shape():
    assert get("mlp", [40], 10).input_shape == (None, 40)
    assert get("cnn", np.zeros((5, 8, 8, 1)).shape[1:], 10).input_shape == (None, 8, 8, 1)


def test_unknown_keyword_argument_is_named():
    with pytest.raises(ValueError, match="`widht`") as info:
        get("wrn", (32, 32, 3), 10, widht=4)
    assert "'width'" in str(info.value)  # The valid hyperparameters are listed.


def test_fixed_hyperparameter_of_a_registered_model_is_not_accepted():
    # `resnet20` fixes depth=20: asking it for another depth is a mistake, not a request.
    with pytest.raises(ValueError, match="`depth`"):
        get("resnet20", (32, 32, 3), 10, depth=32)


def test_normalization_layer_standardises_the_input():
    # Per-channel statistics of CIFAR-10, as a data loader would pass them.
    mean = np.array([0.4914, 0.4822, 0.4465], dtype="float32")
    std = np.array([0.2470, 0.2435, 0.2616], dtype="float32")
    normalized = get("resnet20", (32, 32, 3), 10, normalization=(mean, std))
    plain = get("resnet20", (32, 32, 3), 10)
    assert isinstance(normalized.layers[1], keras.layers.Normalization)
    assert not any(isinstance(layer, keras.layers.Normalization) for layer in plain.layers)
    plain.set_weights(normalized.get_weights())
    x = _batch((32, 32, 3))
    np.testing.assert_allclose(
        _logits(normalized, x), _logits(plain, (x - mean) / std), rtol=1e-4, atol=1e-5
    )


def test_normalization_per_feature_of_vectors():
    rng = np.random.default_rng(1)
    mean = rng.normal(size=40).astype("float32")
    std = rng.uniform(0.5, 2.0, size=40).astype("float32")
    normalized = get("mlp", (40,), 10, normalization=(mean, std))
    plain = get("mlp", (40,), 10)
    plain.set_weights(normalized.get_weights())
    x = rng.normal(size=(2, 40)).astype("float32")
    np.testing.assert_allclose(
        _logits(normalized, x), _logits(plain, (x - mean) / std), rtol=1e-4, atol=1e-5
    )


@pytest.mark.parametrize(
    "normalization",
    [(0.5, 0.25), ([0.5], [0.25]), (np.full((1, 1, 3), 0.5), np.full((1, 1, 3), 0.25))],
)
def test_normalization_accepts_scalars_and_broadcastable_arrays(normalization):
    model = get("cnn", (8, 8, 3), 10, normalization=normalization)
    layer = model.get_layer("normalization")
    x = _batch((8, 8, 3))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x)), (x - 0.5) / 0.25, atol=1e-5)


@pytest.mark.parametrize(
    "normalization",
    [
        "mean",
        (0.5,),
        (0.5, 0.25, 0.1),
        ([0.1, 0.2], [1.0, 1.0]),  # Two values for three channels.
        (np.zeros((3, 3)), np.ones((3, 3))),
        (0.5, 0.0),
        (0.5, -1.0),
        (np.nan, 1.0),
        ("a", "b"),
    ],
)
def test_bad_normalization_is_rejected(normalization):
    with pytest.raises(ValueError, match="Invalid value for argument `normalization`"):
        get("cnn", (8, 8, 3), 10, normalization=normalization)


def test_saves_to_keras_file_and_loads_back_with_identical_predictions(tmp_path):
    # ResNet-20 with normalization: covers the Normalization layer and the option-A shortcuts.
    model = get("resnet20", (32, 32, 3), 10, normalization=([0.5, 0.4, 0.3], [0.2, 0.25, 0.3]))
    x = _batch((32, 32, 3))
    path = tmp_path / "resnet20.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.name == "resnet20"
    np.testing.assert_array_equal(_logits(loaded, x), _logits(model, x))


@pytest.mark.parametrize("name", ["mlp", "cnn", "resnet20", "wrn"])
def test_seeded_builds_are_identical(name):
    def weights(seed):
        keras.utils.set_random_seed(seed)
        kwargs = {"depth": 10, "width": 1} if name == "wrn" else {}
        return get(name, NATURAL_SHAPES[name], 10, **kwargs).get_weights()

    first, again, other = weights(3), weights(3), weights(4)
    assert len(first) == len(again)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize("name", ["cnn", "allcnn_c"])
def test_logits_are_float32_under_mixed_precision(name):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = get(name, (16, 16, 3), 10)
    finally:
        keras.config.set_dtype_policy(previous)
    assert model.output.dtype == "float32"
    assert _logits(model, _batch((16, 16, 3))).dtype == np.float32
