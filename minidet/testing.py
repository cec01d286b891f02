"""Comparison helpers shared by the tests, the kernels' checks and the notebooks."""
from __future__ import annotations

import numpy as np

from .backend import to_numpy


def assert_close(actual, expected, rtol: float = 1e-5, atol: float = 0.0, name: str = "array"):
    """Fail unless |actual − expected| ≤ atol + rtol·|expected| everywhere.

    NaN in `actual` always fails (kernels' outputs are poisoned with NaN before a run, so
    an element no thread wrote shows up here). The message names the worst element.
    """
    a = np.asarray(to_numpy(actual), dtype=np.float64)
    e = np.asarray(to_numpy(expected), dtype=np.float64)
    if a.shape != e.shape:
        raise AssertionError(f"{name}: shape {a.shape} != expected {e.shape}")
    if a.size == 0:
        return
    bad_nan = np.isnan(a) & ~np.isnan(e)
    if bad_nan.any():
        idx = np.unravel_index(int(np.argmax(bad_nan)), a.shape)
        raise AssertionError(f"{name}: {int(bad_nan.sum())} NaN entries (unwritten?), first at {idx}")
    excess = np.abs(a - e) - (atol + rtol * np.abs(e))
    excess = np.where(np.isnan(e) & np.isnan(a), -np.inf, excess)
    i = int(np.argmax(excess))
    if excess.flat[i] > 0:
        idx = np.unravel_index(i, a.shape)
        n_bad = int((excess > 0).sum())
        raise AssertionError(
            f"{name}: {n_bad} of {a.size} entries out of tolerance (rtol={rtol}, atol={atol}); "
            f"worst at {idx}: actual {a.flat[i]!r}, expected {e.flat[i]!r}"
        )


def max_relative_error(actual, expected) -> float:
    """‖actual − expected‖∞ / max(‖expected‖∞, tiny): one number for a report."""
    a = np.asarray(to_numpy(actual), dtype=np.float64)
    e = np.asarray(to_numpy(expected), dtype=np.float64)
    return float(np.max(np.abs(a - e)) / max(np.max(np.abs(e)), 1e-30)) if a.size else 0.0
