"""Permute: reorder the axes of the input, and back in backward. A convolutional YOLO
head uses Permute(0, 2, 3, 1) to turn its (N, 5B+C, S, S) output (NCHW) into the grid
(N, S, S, 5B+C) of the contract (channels last)."""
from __future__ import annotations

from ..backend import get_array_module
from .base import Layer


class Permute(Layer):
    """Permute(*axes): y = x.transpose(axes), made contiguous; axes include the batch axis."""

    def __init__(self, *axes):
        super().__init__()
        self.axes = tuple(int(a) for a in axes)
        if sorted(self.axes) != list(range(len(self.axes))):
            raise ValueError(f"Permute: axes must be a permutation of 0..{len(self.axes) - 1}, got {self.axes}")
        # backward applies the inverse permutation: inverse[axes[k]] = k
        self.inverse = tuple(sorted(range(len(self.axes)), key=lambda k: self.axes[k]))

    def extra_repr(self):
        return ", ".join(map(str, self.axes))

    def output_shape(self, input_shape):
        return tuple(input_shape[a] for a in self.axes)

    def forward(self, x):
        if getattr(x, "ndim", None) != len(self.axes):
            raise ValueError(f"{self.label()}: expected a {len(self.axes)}-d input, "
                             f"got shape {getattr(x, 'shape', None)}")
        self._cache = True
        return get_array_module(x).ascontiguousarray(x.transpose(self.axes))

    def backward(self, dy):
        self._cached()
        return get_array_module(dy).ascontiguousarray(dy.transpose(self.inverse))
