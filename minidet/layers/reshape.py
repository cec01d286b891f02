"""Reshape: (N, ...) → (N, *shape), and back in backward. YOLO's last layer uses it to
turn the flat (N, S·S·(5B+C)) output into the grid (N, S, S, 5B+C)."""
from __future__ import annotations

from .base import Layer


class Reshape(Layer):
    """Reshape(*shape): keeps axis 0; the remaining axes become `shape` (C order)."""

    def __init__(self, *shape):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def extra_repr(self):
        return ", ".join(map(str, self.shape))

    def output_shape(self, input_shape):
        return (input_shape[0],) + self.shape

    def forward(self, x):
        n = 1
        for s in self.shape:
            n *= s
        if getattr(x, "ndim", 0) < 1 or x.size != x.shape[0] * n:
            raise ValueError(f"{self.label()}: cannot reshape input of shape {getattr(x, 'shape', None)} "
                             f"to (N, {', '.join(map(str, self.shape))})")
        self._cache = x.shape
        return x.reshape((x.shape[0],) + self.shape)

    def backward(self, dy):
        return dy.reshape(self._cached())
