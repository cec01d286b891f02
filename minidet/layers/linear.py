"""Linear: y = x Wᵀ + b.  x (N, in_features) → y (N, out_features); W (out, in), b (out,)."""
from __future__ import annotations

import numpy as np

from ..matmul import matmul
from .base import Layer
from .init import he_normal


def linear_forward(x, W, b):
    """Returns (y (N, out), cache)."""
    return matmul(x, W.T) + b, (x, W)


def linear_backward(dy, cache):
    """dy (N, out) → (dx (N, in), dW (out, in), db (out,))."""
    x, W = cache
    dx = matmul(dy, W)
    dW = matmul(dy.T, x).astype(W.dtype, copy=False)
    db = dy.sum(axis=0).astype(W.dtype, copy=False)
    return dx, dW, db


class Linear(Layer):
    """Linear(in_features, out_features): params W (out, in), He-initialised; b (out,), zeros."""

    def __init__(self, in_features, out_features, rng=None, dtype=np.float32):
        super().__init__()
        for name, v in (("in_features", in_features), ("out_features", out_features)):
            if int(v) != v or v < 1:
                raise ValueError(f"Linear: {name} must be an integer >= 1, got {v!r}")
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.params["W"] = he_normal((self.out_features, self.in_features), self.in_features, rng, dtype=dtype)
        self.params["b"] = np.zeros(self.out_features, dtype=dtype)
        self.grads = {"W": None, "b": None}

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}"

    def output_shape(self, input_shape):
        return (input_shape[0], self.out_features)

    def forward(self, x):
        self._check_input(x, "(N, in_features)", self.in_features, "features")
        y, self._cache = linear_forward(x, self.params["W"], self.params["b"])
        return y

    def backward(self, dy):
        dx, self.grads["W"], self.grads["b"] = linear_backward(dy, self._cached())
        return dx
