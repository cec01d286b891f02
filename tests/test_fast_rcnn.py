"""Fast R-CNN's network: shapes, and a tiny one gradient-checked through trunk, RoI pooling and head."""
import numpy as np

from minidet.gradcheck import gradcheck
from minidet.layers import Conv2d, Flatten, LeakyReLU, Linear, RoIPool2d, Sequential
from minidet.layers.base import Layer
from minidet.rcnn import FastRCNN, fast_rcnn, split_outputs


class WithRois(Layer):
    """The one-input layer contract gradcheck takes: the RoIs fixed."""

    def __init__(self, model, rois):
        super().__init__()
        self.model, self.rois, self.layers = model, rois, [model]

    def forward(self, x):
        return self.model.forward(x, self.rois)

    def backward(self, dy):
        return self.model.backward(dy)

    def named_parameters(self, prefix=""):
        return self.model.named_parameters(prefix)


def test_shapes_and_parameter_names():
    model = fast_rcnn(3, width=4, pooled=2)
    out = model.forward(np.zeros((2, 3, 32, 40), np.float32), np.array([[0, 0, 0, 31, 31], [1, 8, 8, 24, 20]]))
    logits, deltas = split_outputs(out, 3)
    assert out.shape == (2, 20) and logits.shape == (2, 4) and deltas.shape == (2, 16)
    names = [n for n, *_ in model.named_parameters()]
    assert names[0] == "trunk.0.W" and names[-1] == "head.1.b" and model.num_parameters() > 0


def test_tiny_two_stage_network_gradcheck():
    rng = np.random.default_rng(0)
    trunk = Sequential(Conv2d(2, 3, 3, padding=1, rng=rng), LeakyReLU(0.1))
    head = Sequential(Flatten(), Linear(3 * 2 * 2, 10, rng=rng))
    model = FastRCNN(trunk, RoIPool2d(2, 0.5), head)
    # Batch indices 0 and 1, a RoI partly outside, overlapping RoIs sharing cells.
    rois = np.array([[0, 0, 0, 13, 11], [1, 2, 4, 9, 9], [1, -4, 6, 7, 20], [0, 3, 3, 12, 12]], dtype=float)
    x = rng.standard_normal((2, 2, 6, 7))
    result = gradcheck(WithRois(model, rois), x)
    assert result.passed(1e-7), str(result)
    assert set(result.errors) == {"dx", "trunk.0.W", "trunk.0.b", "head.1.W", "head.1.b"}
