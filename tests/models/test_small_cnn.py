"""Tests of `metaloss.models.small_cnn`: the MNIST-1D convnet and the small 2-D convnet."""

import keras
import pytest

from metaloss.models.small_cnn import build_cnn, build_cnn1d

from .helpers import logits as forward_logits


def test_cnn1d_on_mnist1d():
    model = build_cnn1d((40,), 10)
    assert model.name == "cnn1d"
    assert forward_logits(model, (40,)).shape == (2, 10)
    # Lengths 40 -> 19 -> 10 -> 5 as in Greydanus's ConvBase (kernel 5, 3, 3; stride 2; pad 1).
    lengths = [model.get_layer(f"conv{i}").output.shape[1] for i in (1, 2, 3)]
    assert lengths == [19, 10, 5]
    assert [model.get_layer(f"conv{i}").kernel_size for i in (1, 2, 3)] == [(5,), (3,), (3,)]


def test_cnn1d_parameter_count_matches_hand_computation():
    # conv1: 1*25*5 + 25 = 150; conv2 and conv3: 25*25*3 + 25 = 1,900 each;
    # dense: (25 channels * 5 positions)*10 + 10 = 1,260. Total 150 + 2*1,900 + 1,260 = 5,210,
    # the count ConvBase of the mnist1d repository prints.
    assert build_cnn1d((40,), 10).count_params() == 5_210


def test_cnn1d_accepts_channels_and_other_lengths():
    assert forward_logits(build_cnn1d((40, 2), 4), (40, 2)).shape == (2, 4)
    assert forward_logits(build_cnn1d((3,), 2), (3,)).shape == (2, 2)
    assert build_cnn1d((40,), 10, channels=8).get_layer("conv3").filters == 8


@pytest.mark.parametrize("input_shape", [(2,), (40, 1, 1)])
def test_cnn1d_rejects_unusable_shapes(input_shape):
    with pytest.raises(ValueError, match="Invalid value for argument `input_shape`"):
        build_cnn1d(input_shape, 10)


@pytest.mark.parametrize("input_shape", [(8, 8, 1), (28, 28, 1), (32, 32, 3)])
def test_cnn_on_digits_mnist_and_cifar(input_shape):
    model = build_cnn(input_shape, 10)
    assert model.name == "cnn"
    logits = forward_logits(model, input_shape)
    assert logits.shape == (2, 10)
    assert (logits < 0).any()


def test_cnn_parameter_count_matches_hand_computation():
    # On MNIST: conv1 3*3*1*32 + 32 = 320; conv2 3*3*32*64 + 64 = 18,496; the 24x24x64 map
    # pooled to 12x12x64 = 9,216 features; dense 9,216*128 + 128 = 1,179,776; logits
    # 128*10 + 10 = 1,290. Total 1,199,882 (the count of Keras's MNIST convnet example).
    assert build_cnn((28, 28, 1), 10).count_params() == 1_199_882


def test_cnn_dropout_is_configurable():
    rates = [
        layer.rate
        for layer in build_cnn((8, 8, 1), 10).layers
        if isinstance(layer, keras.layers.Dropout)
    ]
    assert rates == [0.25, 0.5]
    model = build_cnn((8, 8, 1), 10, dropout=0.0, dense_dropout=0.0, filters=(8,), hidden=16)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    assert model.get_layer("dense").units == 16


@pytest.mark.parametrize("input_shape", [(5, 5, 1), (8, 8), (64,)])
def test_cnn_rejects_unusable_shapes(input_shape):
    with pytest.raises(ValueError, match="Invalid value for argument `input_shape`"):
        build_cnn(input_shape, 10)


@pytest.mark.parametrize(
    ("argument", "value"), [("filters", ()), ("hidden", 0), ("dropout", 1.5), ("channels", 0)]
)
def test_bad_hyperparameters_are_rejected(argument, value):
    builder = build_cnn1d if argument == "channels" else build_cnn
    shape = (40,) if argument == "channels" else (8, 8, 1)
    with pytest.raises(ValueError, match=f"Invalid value for argument `{argument}`"):
        builder(shape, 10, **{argument: value})
