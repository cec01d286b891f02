"""Comparison helpers shared by the tests, the kernels' checks and the notebooks."""
from __future__ import annotations

import numpy as np

from .backend import to_numpy


def assert_close(actual, expected, rtol: float = 1e-5, atol: float = 0.0, name: str = "array"):
    """Fail unless |actual − expected| ≤ atol + rtol·|expected| everywhere.

    NaN must match NaN: a NaN on one side and not the other fails (kernels' outputs are
    poisoned with NaN before a run, so an element no thread wrote shows up here, and a NaN
    the reference has but the result lacks is a difference too); NaN on both sides at the
    same index passes, as do equal infinities. The message names the worst element.
    """
    a = np.asarray(to_numpy(actual), dtype=np.float64)
    e = np.asarray(to_numpy(expected), dtype=np.float64)
    if a.shape != e.shape:
        raise AssertionError(f"{name}: shape {a.shape} != expected {e.shape}")
    if a.size == 0:
        return
    nan_a, nan_e = np.isnan(a), np.isnan(e)
    for mismatch, what in ((nan_a & ~nan_e, "NaN in actual (unwritten?) where expected is not"),
                           (nan_e & ~nan_a, "NaN in expected where actual is not")):
        if mismatch.any():
            idx = tuple(int(v) for v in np.unravel_index(int(np.argmax(mismatch)), a.shape))
            raise AssertionError(f"{name}: {int(mismatch.sum())} entries with {what}, first at {idx}: "
                                 f"actual {float(a[idx])!r}, expected {float(e[idx])!r}")
    with np.errstate(invalid="ignore"):
        excess = np.atleast_1d(np.abs(a - e) - (atol + rtol * np.abs(e))).reshape(-1)
    excess[((a == e) | (nan_a & nan_e)).reshape(-1)] = -np.inf  # equal values (infinities included), or NaN on both sides
    excess[np.isnan(excess)] = np.inf  # inf against another value
    i = int(np.argmax(excess))
    if excess.flat[i] > 0:
        idx = tuple(int(v) for v in np.unravel_index(i, a.shape))
        n_bad = int((excess > 0).sum())
        raise AssertionError(
            f"{name}: {n_bad} of {a.size} entries out of tolerance (rtol={rtol}, atol={atol}); "
            f"worst at {idx}: actual {float(a.flat[i])!r}, expected {float(e.flat[i])!r}"
        )


def max_relative_error(actual, expected) -> float:
    """‖actual − expected‖∞ / max(‖expected‖∞, tiny): one number for a report."""
    a = np.asarray(to_numpy(actual), dtype=np.float64)
    e = np.asarray(to_numpy(expected), dtype=np.float64)
    return float(np.max(np.abs(a - e)) / max(np.max(np.abs(e)), 1e-30)) if a.size else 0.0
