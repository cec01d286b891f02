"""minidet.matmul: large CPU products cut over threads equal NumPy's product."""
import numpy as np
import pytest

from minidet import matmul as mm


@pytest.fixture
def two_threads(monkeypatch):
    monkeypatch.setenv("NUMBA_NUM_THREADS", "2")
    monkeypatch.setattr(mm, "MIN_WORK", 1)


# (M, K, N) that take each path: columns of b, rows of a, and K when both sides are thin.
@pytest.mark.parametrize("shape", [(4, 30, 50), (70, 30, 9), (3, 500, 5), (1, 7, 1)])
@pytest.mark.parametrize("transposed", [False, True])
def test_cut_product_equals_numpy(two_threads, shape, transposed):
    M, K, N = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((M, K))
    b = rng.standard_normal((N, K)).T if transposed else rng.standard_normal((K, N))
    got = mm.matmul(a, b)
    np.testing.assert_allclose(got, a @ b, rtol=1e-12, atol=1e-12)
    assert np.array_equal(got, mm.matmul(a, b))     # the same cut, the same sums, every run


def test_cut_product_writes_into_a_strided_out(two_threads):
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((6, 40)).astype(np.float32), rng.standard_normal((40, 90)).astype(np.float32)
    big = np.zeros((6, 100), np.float32)
    out = big[:, 5:95]
    assert mm.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-5, atol=1e-5)
    assert not big[:, :5].any() and not big[:, 95:].any()


def test_small_or_single_threaded_products_are_numpys(monkeypatch):
    a, b = np.ones((2, 3)), np.ones((3, 4))
    assert np.array_equal(mm.matmul(a, b), a @ b)
    monkeypatch.setenv("NUMBA_NUM_THREADS", "1")
    assert mm.threads() == 1
    monkeypatch.setattr(mm, "MIN_WORK", 1)
    assert np.array_equal(mm.matmul(a, b), a @ b)


def test_importing_minidet_asks_openblas_for_one_thread():
    import subprocess
    import sys

    code = "import os; os.environ.pop('OPENBLAS_NUM_THREADS', None); import minidet; print(os.environ['OPENBLAS_NUM_THREADS'])"
    env = {k: v for k, v in __import__("os").environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "1"
