"""Weight initialisation: He (Kaiming) for layers followed by a leaky ReLU."""
from __future__ import annotations

import math

import numpy as np


def he_std(fan_in: int, negative_slope: float = 0.1) -> float:
    """std = sqrt(2 / ((1 + a²) · fan_in)): keeps the activations' variance through a leaky ReLU of slope a."""
    return math.sqrt(2.0 / ((1.0 + negative_slope**2) * fan_in))


def he_normal(shape, fan_in: int, rng=None, negative_slope: float = 0.1, dtype=np.float32):
    """Weights drawn from N(0, he_std(fan_in)²) with the given NumPy Generator (or a fresh one)."""
    rng = np.random.default_rng() if rng is None else rng
    return (rng.standard_normal(shape) * he_std(fan_in, negative_slope)).astype(dtype)
