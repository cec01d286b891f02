"""MaxPool2d: the maximum over each k×k window, windows stride s apart (overlapping when s < k).

Shapes: x (N, C, H, W) → y (N, C, Ho, Wo), Ho = (H − k) // s + 1, Wo = (W − k) // s + 1
(no padding; leftover rows/columns at the bottom/right are not pooled, as in PyTorch).
The operation (reference, window scan, gradient gather, CPU and CUDA forms) lives in
kernels/maxpool.py; this module holds the layer: its checks, its cache (the int32
argmax of each window's first maximum, which routes the gradient).
"""
from __future__ import annotations

from kernels import maxpool as op
from kernels._device import output_size

from .base import Layer


def maxpool2d_forward(x, kernel_size: int, stride: int):
    """Returns (y (N, C, Ho, Wo), cache); cache = (int32 argmax (N, C, Ho, Wo), x.shape, k, stride)."""
    y, argmax = op.forward(x, kernel_size, stride)
    return y, (argmax, x.shape, kernel_size, stride)


def maxpool2d_backward(dy, cache):
    """dx (N, C, H, W): each dy added at its window's argmax."""
    argmax, x_shape, kernel_size, stride = cache
    return op.backward(dy, argmax, x_shape, kernel_size, stride)


class MaxPool2d(Layer):
    """MaxPool2d(kernel_size=2, stride=None): stride defaults to kernel_size; no params."""

    def __init__(self, kernel_size: int = 2, stride: int | None = None):
        super().__init__()
        stride = kernel_size if stride is None else stride
        for name, v in (("kernel_size", kernel_size), ("stride", stride)):
            if int(v) != v or v < 1:
                raise ValueError(f"MaxPool2d: {name} must be an integer >= 1, got {v!r}")
        self.kernel_size, self.stride = int(kernel_size), int(stride)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}"

    def output_shape(self, input_shape):
        N, C, H, W = input_shape
        k, s = self.kernel_size, self.stride
        return (N, C, output_size(H, k, s), output_size(W, k, s))

    def forward(self, x):
        self._check_input(x, "(N, C, H, W)")
        H, W = x.shape[2:]
        if H < self.kernel_size or W < self.kernel_size:
            raise ValueError(f"{self.label()}: input of {H}×{W} pixels is smaller than the {self.kernel_size}×"
                             f"{self.kernel_size} window; input shape {tuple(x.shape)}")
        y, self._cache = maxpool2d_forward(x, self.kernel_size, self.stride)
        return y

    def backward(self, dy):
        return maxpool2d_backward(dy, self._cached())
