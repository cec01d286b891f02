"""The YOLO v1 family: sizes and costs of the paper's models, output shapes, a gradient check."""
from __future__ import annotations

import numpy as np
import pytest

from minidet.gradcheck import gradcheck
from minidet.layers import Conv2d, Dropout, Flatten, LeakyReLU, Linear, MaxPool2d, Permute, Reshape
from minidet.models import YoloModel, build, fast_yolo, load, profile, reduced_fast_yolo, save
from minidet.pretrain import trunk_of


def test_fast_yolo_size_and_cost():
    """Fast YOLO (yolo-tiny.cfg, Nov 2015): 45.1 M parameters, 4.84 GFLOP per 448×448 image."""
    model = fast_yolo()
    _, params, flops = profile(model)
    assert params == model.num_parameters()
    assert round(params / 1e6, 1) == 45.1
    assert round(flops / 1e9, 2) == 4.84
    convs = [layer for layer in model.layers if isinstance(layer, Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64, 128, 256, 512, 1024, 1024, 1024]
    assert sum(isinstance(layer, MaxPool2d) for layer in model.layers) == 6
    linears = [layer for layer in model.layers if isinstance(layer, Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(50176, 256), (256, 4096), (4096, 1470)]
    text = model.summary()
    assert "45.1 M" in text and "4.84 GFLOP" in text
    assert model.arch == {"name": "fast_yolo", "kwargs": dict(S=7, B=2, C=20, seed=0)}


@pytest.mark.parametrize("head", ["fc", "conv"])
@pytest.mark.parametrize("input_size, width", [(112, 0.25), (56, 0.125)])
def test_reduced_output_shape(input_size, width, head):
    model = reduced_fast_yolo(input_size, width, seed=1, head=head)
    x = np.random.default_rng(0).uniform(0, 1, (2, 3, input_size, input_size)).astype(np.float32)
    model.eval()
    y = model.forward(x)
    assert y.shape == (2, 7, 7, 30) and y.dtype == np.float32
    assert np.isfinite(y).all()
    assert build(model.arch).arch == model.arch
    model.train()
    dpred = np.ones_like(model.forward(x))
    assert model.backward(dpred) is None  # the images get no gradient
    for name, p, g, k in model.named_parameters():
        assert g[k].shape == p[k].shape, name


@pytest.mark.parametrize("bad", [0, 50, 100, 113, 7 * 128, -7])
def test_reduced_rejects_sizes_not_7_times_a_power_of_two(bad):
    with pytest.raises(ValueError, match="input_size"):
        reduced_fast_yolo(bad, 0.25)


def test_reduced_rejects_wrong_image_shape():
    model = reduced_fast_yolo(56, 0.0625)
    with pytest.raises(ValueError, match=r"\(N, 3, 56, 56\)"):
        model.forward(np.zeros((1, 3, 112, 112), np.float32))


def test_tiny_yolo_model_passes_gradcheck():
    """A YoloModel of Fast YOLO's shape, small enough to check every parameter entry in float64:
    conv + leaky + pool twice, then the head (Flatten → Linear → Linear + leaky → Dropout → Linear
    → grid), S=2, B=1, C=1. Biases are random so no pre-activation sits near a kink by accident;
    seed 0 keeps every pre-activation further than ε from leaky ReLU's kink and has no pooling tie."""
    rng = np.random.default_rng(0)
    S, B, C = 2, 1, 1
    layers = [Conv2d(3, 2, 3, padding=1, rng=rng), LeakyReLU(0.1), MaxPool2d(2, 2),
              Conv2d(2, 3, 3, padding=1, rng=rng), LeakyReLU(0.1), MaxPool2d(2, 2),
              Flatten(), Linear(3 * S * S, 4, rng=rng), Linear(4, 6, rng=rng), LeakyReLU(0.1),
              Dropout(0.5, seed=0), Linear(6, S * S * (5 * B + C), rng=rng), Reshape(S, S, 5 * B + C)]
    model = YoloModel(layers, {"name": "tiny", "kwargs": {}}, 4 * S, S, B, C)
    for _, p, _, k in model.named_parameters():
        if k == "b":
            p[k] = rng.uniform(-0.5, 0.5, p[k].shape).astype(np.float32)
    model.train()
    x = rng.uniform(0, 1, (2, 3, 8, 8))
    assert model.forward(x.astype(np.float32)).shape == (2, S, S, 5 * B + C)
    result = gradcheck(model, x, seed=0, check_input=False)
    assert len(result.errors) == 10  # every W and b
    assert result.passed(1e-7), str(result)


def test_gradcheck_catches_a_wrong_head_gradient():
    """The check above is not vacuous: a 1 % error in one bias gradient fails it."""
    rng = np.random.default_rng(0)

    class WrongLinear(Linear):
        def backward(self, dy):
            dx = super().backward(dy)
            self.grads["b"] = self.grads["b"] * 1.01
            return dx

    layers = [Conv2d(3, 2, 3, padding=1, rng=rng), LeakyReLU(0.1), MaxPool2d(2, 2), Flatten(),
              WrongLinear(2 * 2 * 2, 12, rng=rng), Reshape(2, 2, 3)]
    model = YoloModel(layers, {"name": "tiny", "kwargs": {}}, 4, 2, 0, 3)
    result = gradcheck(model, rng.uniform(0, 1, (2, 3, 4, 4)), check_input=False)
    assert not result.passed(1e-7) and result.where.startswith("4.b")


def test_conv_head_is_a_shared_1x1_convolution_read_as_the_grid(tmp_path):
    """head="conv": the same convolutions (same initial weights), then Conv2d 1×1 to 5B + C
    channels and Permute(0, 2, 3, 1); grid[n, i, j, c] is the 1×1 output at (c, i, j)."""
    fc, conv = reduced_fast_yolo(56, 0.125, seed=3), reduced_fast_yolo(56, 0.125, seed=3, head="conv")
    assert fc.trunk_length == conv.trunk_length == len(trunk_of(conv).layers)
    for a, b in zip(trunk_of(fc).layers, trunk_of(conv).layers):
        for k in a.params:
            np.testing.assert_array_equal(a.params[k], b.params[k])
    head = conv.layers[conv.trunk_length:]
    assert [type(layer) for layer in head] == [Conv2d, Permute]
    assert (head[0].in_channels, head[0].out_channels, head[0].kernel_size) == (trunk_of(conv).layers[-2].out_channels, 30, 1)
    assert not any(isinstance(layer, (Linear, Dropout)) for layer in conv.layers)
    assert conv.arch["kwargs"]["head"] == "conv" and conv.num_parameters() < fc.num_parameters()
    x = np.random.default_rng(0).uniform(0, 1, (2, 3, 56, 56)).astype(np.float32)
    maps = trunk_of(conv).forward(x)
    channels_first = head[0].forward(maps)
    np.testing.assert_array_equal(conv.forward(x), channels_first.transpose(0, 2, 3, 1))
    save(conv, tmp_path / "conv.npz")
    again = load(tmp_path / "conv.npz")
    assert again.arch == conv.arch and again.trunk_length == conv.trunk_length
    np.testing.assert_array_equal(again.forward(x), conv.forward(x))


def test_reduced_rejects_an_unknown_head():
    with pytest.raises(ValueError, match="head"):
        reduced_fast_yolo(56, 0.125, head="dense")


def test_tiny_conv_head_model_passes_gradcheck():
    """The convolutional head's shape in small: conv + leaky + pool, then Conv2d 1×1 → Permute;
    every W and b checked in float64."""
    rng = np.random.default_rng(0)
    S, B, C = 2, 1, 2
    layers = [Conv2d(3, 2, 3, padding=1, rng=rng), LeakyReLU(0.1), MaxPool2d(2, 2),
              Conv2d(2, 5 * B + C, 1, rng=rng), Permute(0, 2, 3, 1)]
    model = YoloModel(layers, {"name": "tiny", "kwargs": {}}, 2 * S, S, B, C, trunk_length=3)
    for _, p, _, k in model.named_parameters():
        if k == "b":
            p[k] = rng.uniform(-0.5, 0.5, p[k].shape).astype(np.float32)
    x = rng.uniform(0, 1, (2, 3, 4, 4))
    assert model.forward(x.astype(np.float32)).shape == (2, S, S, 5 * B + C)
    result = gradcheck(model, x, seed=0, check_input=False)
    assert len(result.errors) == 4
    assert result.passed(1e-7), str(result)
