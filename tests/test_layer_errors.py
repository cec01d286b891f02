"""Bad input to a layer raises an error that names the layer and the shapes."""
import numpy as np
import pytest

from minidet.layers import Conv2d, Dropout, Flatten, LeakyReLU, Linear, MaxPool2d, Permute, Reshape, Sequential


def test_wrong_number_of_dimensions():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4.*4-D input.*\(3, 8, 8\)"):
        Conv2d(3, 4, 3).forward(np.zeros((3, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"MaxPool2d.*4-D.*\(8, 8\)"):
        MaxPool2d().forward(np.zeros((8, 8), np.float32))
    with pytest.raises(ValueError, match=r"Linear\(4, 2\).*2-D.*\(1, 4, 1\)"):
        Linear(4, 2).forward(np.zeros((1, 4, 1), np.float32))


def test_channel_mismatch():
    with pytest.raises(ValueError, match=r"Conv2d\(3, 4.*5 channels, expected 3.*\(2, 5, 8, 8\)"):
        Conv2d(3, 4, 3).forward(np.zeros((2, 5, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"Linear\(4, 2\).*3 features, expected 4"):
        Linear(4, 2).forward(np.zeros((2, 3), np.float32))


def test_image_smaller_than_kernel():
    with pytest.raises(ValueError, match=r"Conv2d.*2×2 pixels is smaller than the kernel.*\(1, 3, 2, 2\)"):
        Conv2d(3, 4, 5, padding=1).forward(np.zeros((1, 3, 2, 2), np.float32))
    with pytest.raises(ValueError, match=r"MaxPool2d\(kernel_size=3.*2×5 pixels"):
        MaxPool2d(3).forward(np.zeros((1, 1, 2, 5), np.float32))
    # Padding can make a small image big enough: 2×2 with padding 1 takes a 3×3 kernel.
    assert Conv2d(1, 1, 3, padding=1).forward(np.zeros((1, 1, 2, 2), np.float32)).shape == (1, 1, 2, 2)


@pytest.mark.parametrize("layer", [Conv2d(1, 1, 1), LeakyReLU(), MaxPool2d(), Linear(2, 2), Flatten(),
                                   Dropout(), Reshape(4), Permute(1, 0), Sequential(Linear(2, 2))],
                         ids=lambda layer: type(layer).__name__)
def test_backward_before_forward(layer):
    with pytest.raises(RuntimeError, match=rf"{type(layer).__name__}.*backward\(\) called before forward\(\)"):
        layer.backward(np.zeros((1, 2), np.float32))


def test_integer_input_is_refused():
    with pytest.raises(ValueError, match=r"LeakyReLU.*floating-point.*int64"):
        LeakyReLU().forward(np.zeros((2, 2), np.int64))


@pytest.mark.parametrize("make", [lambda: Conv2d(0, 1, 3), lambda: Conv2d(1, 1, 3, stride=0),
                                  lambda: Conv2d(1, 1, 3, padding=-1), lambda: MaxPool2d(0),
                                  lambda: Dropout(1.0), lambda: LeakyReLU(1.5), lambda: Linear(2.5, 1),
                                  lambda: Permute(0, 2, 3), lambda: Permute(0, 1, 1)])
def test_bad_constructor_arguments(make):
    with pytest.raises(ValueError):
        make()


def test_sequential_refuses_non_layers():
    with pytest.raises(ValueError, match="item 1 is a function"):
        Sequential(Linear(2, 2), lambda x: x)


def test_permute_refuses_an_input_of_another_rank():
    with pytest.raises(ValueError, match=r"Permute\(0, 2, 3, 1\).*4-d input.*\(2, 3\)"):
        Permute(0, 2, 3, 1).forward(np.zeros((2, 3), np.float32))
