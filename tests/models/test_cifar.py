"""Tests of `metaloss.models.cifar`: All-CNN-C and the CIFAR AlexNet."""

import keras
import pytest

from metaloss.models.cifar import build_alexnet, build_allcnn_c

from .helpers import logits as forward_logits


@pytest.mark.parametrize(("input_shape", "num_classes"), [((32, 32, 3), 10), ((32, 32, 3), 100)])
def test_allcnn_c_on_cifar(input_shape, num_classes):
    model = build_allcnn_c(input_shape, num_classes)
    assert model.name == "allcnn_c"
    logits = forward_logits(model, input_shape)
    assert logits.shape == (2, num_classes)
    assert (logits < 0).any()  # No ReLU on the class convolution.
    # Table 2 of the paper: global averaging over 6x6 spatial dimensions.
    assert model.get_layer("conv9").output.shape[1:] == (6, 6, num_classes)


def test_allcnn_c_parameter_count_matches_hand_computation():
    # Convolutions with biases, 3x3 unless noted, on 3 input channels and 10 classes:
    #   conv1 3->96: 27*96 + 96 = 2,688          conv2, conv3 96->96: 864*96 + 96 = 83,040 each
    #   conv4 96->192: 864*192 + 192 = 166,080   conv5-7 192->192: 1,728*192 + 192 = 331,968 each
    #   conv8 1x1 192->192: 36,864 + 192 = 37,056   conv9 1x1 192->10: 1,920 + 10 = 1,930
    # Total 2,688 + 2*83,040 + 166,080 + 3*331,968 + 37,056 + 1,930 = 1,369,738; the paper's
    # table 3 says 1.4M.
    model = build_allcnn_c((32, 32, 3), 10)
    assert model.count_params() == 1_369_738
    assert model.count_params() == pytest.approx(1.37e6, rel=0.02)


def test_allcnn_c_dropout_follows_the_paper():
    # Section 3.2.1: 20% on the input, 50% after each layer replacing a pooling layer.
    model = build_allcnn_c((32, 32, 3), 10)
    dropout = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert [layer.rate for layer in dropout] == [0.2, 0.5, 0.5]
    assert model.get_layer("conv3").strides == (2, 2)
    assert model.get_layer("conv6").strides == (2, 2)


def test_allcnn_c_works_on_mnist_sized_images_and_rejects_tiny_ones():
    assert forward_logits(build_allcnn_c((28, 28, 1), 10), (28, 28, 1)).shape == (2, 10)
    with pytest.raises(ValueError, match="Invalid value for argument `input_shape`"):
        build_allcnn_c((8, 8, 1), 10)


def test_alexnet_on_cifar():
    model = build_alexnet((32, 32, 3), 10)
    assert model.name == "alexnet"
    logits = forward_logits(model, (32, 32, 3))
    assert logits.shape == (2, 10)
    assert (logits < 0).any()
    # PyTorch's arithmetic: 11x11 stride 4 padding 5 maps 32 to 8; pools give 4, 2, 1.
    sides = [model.get_layer(name).output.shape[1] for name in ("conv1", "pool1", "pool2", "pool3")]
    assert sides == [8, 4, 2, 1]


def test_alexnet_parameter_count_matches_hand_computation():
    # conv1 11*11*3*64 + 64 = 23,296        conv2 5*5*64*192 + 192 = 307,392
    # conv3 3*3*192*384 + 384 = 663,936     conv4 3*3*384*256 + 256 = 884,992
    # conv5 3*3*256*256 + 256 = 590,080     dense 256*10 + 10 = 2,570
    # Total 2,472,266 ("2.47M" in pytorch-classification's CIFAR table).
    assert build_alexnet((32, 32, 3), 10).count_params() == 2_472_266


@pytest.mark.parametrize("input_shape", [(28, 28, 1), (32, 32)])
def test_alexnet_rejects_unusable_shapes(input_shape):
    with pytest.raises(ValueError, match="Invalid value for argument `input_shape`"):
        build_alexnet(input_shape, 10)
