"""Dropout (inverted): in training, each unit is zeroed with probability p and the kept
ones are scaled by 1/(1 − p), so the expected activation is unchanged and `eval()` is
the identity. The mask is drawn in forward (training mode only) and reused by backward.
Any input shape.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from .base import Layer


class Dropout(Layer):
    """Dropout(p=0.5, seed=None): `rng` is a NumPy Generator (a CuPy one for GPU inputs)."""

    def __init__(self, p: float = 0.5, seed=None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.seed = seed
        self.rng = np.random.default_rng(seed)
        self._gpu_rng = None

    def extra_repr(self):
        return f"p={self.p}"

    def _random(self, x):
        xp = get_array_module(x)
        if xp is np:
            return self.rng.random(x.shape, dtype=np.float64 if x.dtype == np.float64 else np.float32)
        if self._gpu_rng is None:
            # Seeded from the CPU generator so a seeded model stays reproducible on the GPU.
            self._gpu_rng = xp.random.default_rng(int(self.rng.integers(2**63)))
        return self._gpu_rng.random(x.shape, dtype=x.dtype)

    def forward(self, x):
        self._check_float(x)
        if not self.training or self.p == 0.0:
            self._cache = ("identity",)
            return x
        scale = x.dtype.type(1.0 / (1.0 - self.p))
        mask = (self._random(x) >= self.p) * scale  # 0 or 1/(1 − p), in x's dtype
        mask = mask.astype(x.dtype, copy=False)
        self._cache = ("mask", mask)
        return x * mask

    def backward(self, dy):
        cache = self._cached()
        if cache[0] == "identity":
            return dy
        return dy * cache[1]
