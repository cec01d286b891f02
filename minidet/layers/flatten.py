"""Flatten: (N, C, H, W) → (N, C·H·W) in C order (PyTorch's order), and back in backward."""
from __future__ import annotations

from .base import Layer


class Flatten(Layer):
    """Flatten(); no params. Any input of ndim ≥ 2: keeps axis 0, flattens the rest."""

    def forward(self, x):
        if getattr(x, "ndim", 0) < 2:
            raise ValueError(f"{self.label()}: expected an input of at least 2 dimensions (N, ...), "
                             f"got shape {getattr(x, 'shape', None)}")
        self._cache = x.shape
        return x.reshape(x.shape[0], -1)

    def output_shape(self, input_shape):
        n = 1
        for d in input_shape[1:]:
            n *= d
        return (input_shape[0], n)

    def backward(self, dy):
        return dy.reshape(self._cached())
