"""LeakyReLU: y = x for x > 0, a·x otherwise (a = 0.1 in YOLO), elementwise on any shape.

The operation (its NumPy reference, its CPU and CUDA forms) lives in kernels/leaky_relu.py;
this module holds the layer: its check of the slope and its cache. For 0 ≤ a < 1,
y = max(x, a·x), and y has the sign of x, so the backward needs only the output.
"""
from __future__ import annotations

from kernels import leaky_relu as op
from kernels.leaky_relu import leaky_relu_reference  # noqa: F401  (the definition, for readers and tests)

from .base import Layer


def leaky_relu_forward(x, negative_slope: float = 0.1):
    """y = leaky_relu(x); returns (y, cache). Any shape."""
    y = op.forward(x, negative_slope)
    return y, (y, negative_slope)


def leaky_relu_backward(dy, cache):
    """dx for leaky_relu_forward's output y (the cache). Same shape as dy."""
    y, negative_slope = cache
    return op.backward(y, dy, negative_slope)


class LeakyReLU(Layer):
    """LeakyReLU(negative_slope=0.1); no params. Any input shape; output has the same shape."""

    def __init__(self, negative_slope: float = 0.1):
        super().__init__()
        if not 0.0 <= negative_slope < 1.0:
            # The backward tells x > 0 from y > 0, which holds only for slopes in [0, 1).
            raise ValueError(f"LeakyReLU: negative_slope must be in [0, 1), got {negative_slope!r}")
        self.negative_slope = float(negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"

    def forward(self, x):
        self._check_float(x)
        y, self._cache = leaky_relu_forward(x, self.negative_slope)
        return y

    def backward(self, dy):
        return leaky_relu_backward(dy, self._cached())
