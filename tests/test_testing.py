"""minidet.testing.assert_close: what it lets through and what it must not."""
import numpy as np
import pytest

from minidet.testing import assert_close


def test_passes_within_tolerance_and_on_matching_nan_and_inf():
    assert_close(1.0 + 1e-9, 1.0, rtol=1e-6)
    assert_close(np.float32(np.nan), np.nan)
    assert_close(np.array([1.0, np.nan, np.inf, -np.inf]), np.array([1.0 + 1e-7, np.nan, np.inf, -np.inf]), rtol=1e-6)


@pytest.mark.parametrize("actual,expected,message", [
    ([np.nan, 1.0], [0.0, 1.0], "NaN in actual"),
    ([0.0, 1.0], [np.nan, 1.0], "NaN in expected"),
    # A NaN in expected must not hide a mismatch elsewhere (it used to: argmax stopped on the NaN).
    ([np.nan, 1.0, 5.0], [np.nan, 1.0, 1.0], "out of tolerance"),
    ([1.0, 2.0], [1.0, 2.1], "out of tolerance"),
    ([np.inf, 1.0], [1.0, 1.0], "out of tolerance"),
    ([np.inf], [-np.inf], "out of tolerance"),
    ([1.0], [np.inf], "out of tolerance"),
    (np.float64(2.0), 1.0, "out of tolerance"),
    (np.nan, 1.0, "NaN in actual"),
])
def test_fails_on_a_difference(actual, expected, message):
    with pytest.raises(AssertionError, match=message):
        assert_close(np.array(actual), np.array(expected), rtol=1e-3, name="x")


def test_names_the_worst_element_and_checks_shapes():
    with pytest.raises(AssertionError, match=r"worst at \(1,\): actual 3\.0, expected 1\.0"):
        assert_close(np.array([1.0, 3.0, 1.5]), np.array([1.0, 1.0, 1.0]), rtol=1e-3)
    with pytest.raises(AssertionError, match="shape"):
        assert_close(np.zeros(2), np.zeros(3))
