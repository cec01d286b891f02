"""The im2col convolution equals the naive loop definition, forward and backward."""
import numpy as np
import pytest

from minidet.layers import conv2d_backward, conv2d_backward_naive, conv2d_forward, conv2d_forward_naive
from minidet.layers.im2col import col2im, im2col, im2col_reference
from minidet.testing import assert_close

CASES = [(2, 3, 7, 6, 4, 3, 1, 1), (2, 3, 9, 7, 2, 3, 2, 1), (1, 2, 8, 9, 3, 5, 2, 2), (2, 4, 5, 6, 3, 1, 1, 0),
         (3, 2, 6, 5, 2, 1, 2, 1), (1, 3, 11, 4, 2, 3, 3, 0), (2, 1, 4, 4, 2, 2, 2, 0)]


@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("N,C,H,W,F,k,s,p", CASES)
def test_fast_conv_equals_naive(N, C, H, W, F, k, s, p, dtype, rtol):
    rng = np.random.default_rng(N * 100 + k * 10 + s + p)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((F, C, k, k)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    y, cache = conv2d_forward(x, Wt, b, s, p)
    y_ref, cache_ref = conv2d_forward_naive(x.astype(np.float64), Wt.astype(np.float64), b.astype(np.float64), s, p)
    assert y.dtype == dtype
    # Relative to the scale of the output: float32 sums of k·k·C products round near 1e-7·|terms|.
    scale = np.abs(y_ref).max()
    assert_close(y, y_ref, rtol=rtol, atol=rtol * scale, name="y")
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx, dW, db = conv2d_backward(dy, cache)
    dx_r, dW_r, db_r = conv2d_backward_naive(dy.astype(np.float64), cache_ref)
    for name, a, e in (("dx", dx, dx_r), ("dW", dW, dW_r), ("db", db, db_r)):
        assert a.dtype == dtype, name
        assert_close(a, e, rtol=rtol, atol=rtol * np.abs(e).max(), name=name)


@pytest.mark.parametrize("k,s,p", [(3, 1, 1), (3, 2, 0), (2, 2, 1), (5, 3, 2)])
def test_im2col_matches_slicing_and_col2im_is_its_adjoint(k, s, p):
    rng = np.random.default_rng(k + s + p)
    x = rng.standard_normal((2, 3, 9, 8))
    cols = im2col(x, k, s, p)
    np.testing.assert_array_equal(cols, im2col_reference(x, k, s, p))
    # <im2col(x), c> == <x, col2im(c)> for any c: col2im is the exact adjoint.
    c = rng.standard_normal(cols.shape)
    lhs = np.sum(cols * c)
    rhs = np.sum(x * col2im(c, x.shape, k, s, p))
    assert abs(lhs - rhs) < 1e-10 * abs(lhs)
