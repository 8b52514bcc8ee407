"""Tests of `metaloss.models.resnet`: CIFAR ResNet, pre-activation ResNet and Wide ResNet."""

import keras
import numpy as np
import pytest

from metaloss.models.resnet import _shortcut_a, build_preresnet, build_resnet, build_wide_resnet

from .helpers import logits as forward_logits


def _trainable(model):
    # PyTorch's parameter count: BatchNorm's moving mean and variance are not parameters there.
    return sum(int(np.prod(weight.shape)) for weight in model.trainable_weights)


def _resnet_trainable(n, num_classes=10):
    """Hand count of a CIFAR ResNet with n blocks per stage and option-A shortcuts.

    3x3 convolutions without bias: stem 3->16; stage 1: 2n convs 16->16; stage 2: one 16->32 and
    2n-1 32->32; stage 3: one 32->64 and 2n-1 64->64. Each conv has a BatchNorm (gamma, beta),
    the shortcuts have no parameters, and the classifier is Dense(64 -> num_classes).
    """
    convs = 9 * (3 * 16 + 2 * n * 16 * 16 + 16 * 32 + (2 * n - 1) * 32 * 32)
    convs += 9 * (32 * 64 + (2 * n - 1) * 64 * 64)
    batchnorm = 2 * (16 + 2 * n * (16 + 32 + 64))
    return convs + batchnorm + 64 * num_classes + num_classes


def _wrn_trainable(depth, k, num_classes=10):
    """Hand count of WRN-depth-k: stem, pre-activation blocks, 1x1 shortcuts, final BN, dense."""
    n = (depth - 4) // 6
    total = 9 * 3 * 16  # Stem 3x3 convolution 3 -> 16.
    channels = 16
    for stage, filters in enumerate((16 * k, 32 * k, 64 * k)):
        for block in range(n):
            total += 2 * channels + 9 * channels * filters  # BN1 and conv1.
            total += 2 * filters + 9 * filters * filters  # BN2 and conv2.
            if block == 0 and (channels != filters or stage > 0):
                total += channels * filters  # 1x1 projection shortcut where the shape changes.
            channels = filters
    return total + 2 * channels + channels * num_classes + num_classes


def test_hand_count_of_resnet20():
    # Written out: convs 432 + 13,824 + (4,608 + 46,080) + (18,432 + 184,320) = 267,696;
    # BatchNorm 2*(16 + 6*(16 + 32 + 64)) = 1,376; dense 64*10 + 10 = 650. Total 269,722.
    assert _resnet_trainable(3) == 269_722


@pytest.mark.parametrize(
    # Expected counts: table 6 of He et al. (arXiv:1512.03385): 0.27M, 0.46M, 0.85M.
    ("depth", "published"),
    [(20, 0.27e6), (32, 0.46e6), (56, 0.85e6)],
)
def test_resnet_parameter_counts_match_the_paper(depth, published):
    model = build_resnet((32, 32, 3), 10, depth=depth)
    assert model.name == f"resnet{depth}"
    assert _trainable(model) == _resnet_trainable((depth - 2) // 6)
    assert _trainable(model) == pytest.approx(published, rel=0.02)


def test_resnet_layout():
    model = build_resnet((32, 32, 3), 10, depth=20)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    # depth = 19 convolutions + 1 dense layer, all 3x3: option-A shortcuts have no convolution.
    assert len(convs) == 19
    assert all(layer.kernel_size == (3, 3) and not layer.use_bias for layer in convs)
    assert isinstance(convs[0].kernel_initializer, keras.initializers.HeNormal)
    sides = [model.get_layer(f"stage{s}_block1_add").output.shape[1:] for s in (1, 2, 3)]
    assert sides == [(32, 32, 16), (16, 16, 32), (8, 8, 64)]
    batchnorm = model.get_layer("stem_bn")
    assert (batchnorm.momentum, batchnorm.epsilon) == (0.9, 1e-5)
    assert not any(layer.losses for layer in model.layers)  # No weight-decay regularisers.


@pytest.mark.parametrize("input_shape", [(32, 32, 3), (28, 28, 1), (9, 9, 1)])
def test_resnet_outputs_logits(input_shape):
    logits = forward_logits(build_resnet(input_shape, 10), input_shape)
    assert logits.shape == (2, 10)
    assert (logits < 0).any()


def test_option_a_shortcut_subsamples_and_zero_pads_channels():
    inputs = keras.Input((5, 5, 16))
    shortcut = keras.Model(inputs, _shortcut_a(inputs, 32, 2, "shortcut"))
    assert shortcut.count_params() == 0
    x = np.random.default_rng(0).normal(size=(2, 5, 5, 16)).astype("float32")
    expected = np.pad(x[:, ::2, ::2, :], ((0, 0), (0, 0), (0, 0), (8, 8)))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(shortcut(x)), expected)


def test_preresnet20():
    model = build_preresnet((32, 32, 3), 10)
    assert model.name == "preresnet20"
    assert forward_logits(model, (32, 32, 3)).shape == (2, 10)
    # Same parameters as ResNet-20: the stem's BatchNorm moves to the end (table 6 of
    # arXiv:1512.03385 and the layout of arXiv:1603.05027: 0.27M).
    assert _trainable(model) == _resnet_trainable(3)
    # Pre-activation: BN-ReLU before each convolution, the sum not activated, a final BN-ReLU.
    following = model.get_layer("stage1_block2_bn1")
    assert following.input is model.get_layer("stage1_block1_add").output
    assert model.get_layer("final_bn") is not None


@pytest.mark.parametrize(
    # Expected counts: tables 1 and 2 of Zagoruyko & Komodakis (arXiv:1605.07146).
    ("depth", "width", "published"),
    [(16, 4, 2.7e6), (40, 4, 8.9e6), (16, 8, 11.0e6), (28, 10, 36.5e6)],
)
def test_wide_resnet_parameter_counts_match_the_paper(depth, width, published):
    model = build_wide_resnet((32, 32, 3), 10, depth=depth, width=width)
    assert model.name == f"wrn_{depth}_{width}"
    assert _trainable(model) == _wrn_trainable(depth, width)
    assert _trainable(model) == pytest.approx(published, rel=0.02)


def test_wide_resnet_outputs_logits_and_has_dropout():
    model = build_wide_resnet((32, 32, 3), 10, depth=10, width=2)
    logits = forward_logits(model, (32, 32, 3))
    assert logits.shape == (2, 10)
    assert (logits < 0).any()
    rates = {layer.rate for layer in model.layers if isinstance(layer, keras.layers.Dropout)}
    assert rates == {0.3}
    model = build_wide_resnet((32, 32, 3), 10, depth=10, width=2, dropout=0.0)
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in model.layers)


def test_wide_resnet_projection_shortcuts_only_where_the_shape_changes():
    model = build_wide_resnet((32, 32, 3), 10, depth=16, width=1)
    shortcuts = [layer.name for layer in model.layers if layer.name.endswith("_shortcut")]
    # Width 1: stage 1 keeps 16 channels at stride 1, so only stages 2 and 3 project.
    assert shortcuts == ["stage2_block1_shortcut", "stage3_block1_shortcut"]


@pytest.mark.parametrize(
    ("builder", "kwargs", "argument"),
    [
        (build_resnet, {"depth": 21}, "depth"),
        (build_resnet, {"depth": 2}, "depth"),
        (build_preresnet, {"depth": 19}, "depth"),
        (build_wide_resnet, {"depth": 15}, "depth"),
        (build_wide_resnet, {"depth": 4}, "depth"),
        (build_wide_resnet, {"width": 0}, "width"),
        (build_wide_resnet, {"dropout": 1.0}, "dropout"),
    ],
)
def test_bad_hyperparameters_are_rejected(builder, kwargs, argument):
    with pytest.raises(ValueError, match=f"Invalid value for argument `{argument}`"):
        builder((32, 32, 3), 10, **kwargs)


@pytest.mark.parametrize("builder", [build_resnet, build_preresnet, build_wide_resnet])
def test_vector_inputs_are_rejected(builder):
    with pytest.raises(ValueError, match="Invalid value for argument `input_shape`"):
        builder((40,), 10)
