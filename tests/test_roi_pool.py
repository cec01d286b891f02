"""RoIPool2d: hand-computed cases of torchvision's rule, the loop-by-loop reference, the
gradient, bad RoIs, and parity with torchvision.ops.roi_pool where torchvision is installed."""
import numpy as np
import pytest

from kernels.roi_pool import round_half_away
from minidet.gradcheck import gradcheck
from minidet.layers import RoIPool2d, RoIPool2dFixed, roi_pool2d_forward_naive
from minidet.testing import assert_close


def plane(H, W):
    """x (1, 1, H, W) with x[i, j] = 10·i + j: every value says where it came from."""
    return (10.0 * np.arange(H)[:, None] + np.arange(W)[None, :]).reshape(1, 1, H, W)


def test_round_half_away_from_zero():
    assert round_half_away([0.5, 1.5, 2.5, -0.5, -2.5, 2.4999, -1.2]).tolist() == [1, 2, 3, -1, -3, 2, -1]


def test_whole_map_one_bin_is_the_global_max():
    x = plane(4, 5)
    y = RoIPool2d(1, 1.0).forward(x, np.array([[0, 0, 0, 4, 3]]))
    assert y.shape == (1, 1, 1, 1) and y[0, 0, 0, 0] == 34.0


def test_bins_of_an_uneven_roi_overlap_by_floor_and_ceil():
    # RoI rows 1..5 (h = 5) into oh = 2: bin 0 rows 1 + [0, ceil(2.5)) = 1..3, bin 1 rows 1 + [2, 5) = 3..5;
    # columns 0..2 (w = 3) into ow = 2: bin 0 cols [0, 2) = 0..1, bin 1 cols [1, 3) = 1..2.
    x = -plane(7, 4)  # decreasing: each bin's max is its first (top-left) cell
    pool = RoIPool2d((2, 2), 1.0)
    y = pool.forward(x, np.array([[0, 0, 1, 2, 5]]))
    assert y[0, 0].tolist() == [[-10.0, -11.0], [-30.0, -31.0]]
    argmax = pool._cache[0][0, 0]
    assert argmax.tolist() == [[1 * 4 + 0, 1 * 4 + 1], [3 * 4 + 0, 3 * 4 + 1]]


def test_coordinates_are_scaled_and_rounded_half_away_from_zero():
    # scale 0.5: x1 = 1 -> 0.5 -> 1 (not NumPy's 0), x2 = 5 -> 2.5 -> 3 (not 2); y 0..0.
    x = plane(3, 6)
    y = RoIPool2d((1, 3), 0.5).forward(x, np.array([[0, 1, 0, 5, 0]]))
    # columns 1..3 (w = 3) into three bins of one column each
    assert y[0, 0, 0].tolist() == [1.0, 2.0, 3.0]


def test_roi_wider_than_bins_from_a_single_cell_repeats_it():
    # A 1×1 RoI (x2 < x1 is clamped to one cell too) into 2×2: every bin is that cell.
    x = plane(3, 3)
    for roi in ([0, 1, 2, 1, 2], [0, 1, 2, 0, 0]):
        y = RoIPool2d(2, 1.0).forward(x, np.array([roi], dtype=float))
        assert (y[0, 0] == 21.0).all(), roi


def test_bins_outside_the_map_are_empty_and_give_zero_and_no_gradient():
    # RoI columns 3..6 on a map 5 wide: bins 0, 1 hold columns 3, 4; bins 2, 3 lie outside.
    x = plane(2, 5) + 1.0
    pool = RoIPool2d((1, 4), 1.0)
    y = pool.forward(x, np.array([[0, 3, 0, 6, 1]]))
    assert y[0, 0, 0].tolist() == [14.0, 15.0, 0.0, 0.0]
    dx = pool.backward(np.ones_like(y))
    assert dx.sum() == 2.0 and dx[0, 0, 1, 3] == 1.0 and dx[0, 0, 1, 4] == 1.0
    # Wholly outside (even above-left of the origin): zeros, dx zero.
    y = pool.forward(x, np.array([[0, -9, -9, -6, -6]]))
    assert (y == 0).all() and (pool.backward(np.ones_like(y)) == 0).all()


def test_ties_go_to_the_first_maximum_in_row_major_order():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 2] = x[0, 0, 2, 0] = x[0, 0, 2, 2] = 5.0
    pool = RoIPool2d(1, 1.0)
    pool.forward(x, np.array([[0, 0, 0, 2, 2]]))
    dx = pool.backward(np.full((1, 1, 1, 1), 3.0))
    assert dx[0, 0, 1, 2] == 3.0 and dx.sum() == 3.0


def test_backward_adds_where_several_rois_choose_one_cell():
    x = plane(4, 4)
    x2 = np.concatenate([x, -x], axis=0)
    pool = RoIPool2d(1, 1.0)
    rois = np.array([[0, 0, 0, 3, 3], [0, 2, 2, 3, 3], [1, 0, 0, 3, 3]], dtype=float)
    y = pool.forward(x2, rois)
    assert y.ravel().tolist() == [33.0, 33.0, 0.0]
    dx = pool.backward(np.array([1.0, 2.0, 4.0]).reshape(3, 1, 1, 1))
    assert dx[0, 0, 3, 3] == 3.0 and dx[1, 0, 0, 0] == 4.0 and dx.sum() == 7.0


def random_rois(rng, R, N, img_w, img_h):
    """Boxes partly or wholly outside the image, tiny and huge, some with half-pixel ends."""
    x1 = rng.uniform(-0.3 * img_w, 1.1 * img_w, R)
    y1 = rng.uniform(-0.3 * img_h, 1.1 * img_h, R)
    w, h = rng.uniform(0, 0.8 * img_w, R), rng.uniform(0, 0.8 * img_h, R)
    boxes = np.stack([x1, y1, x1 + w, y1 + h], axis=1)
    boxes[::3] = np.round(boxes[::3] * 2) / 2  # exact halves exercise the rounding rule
    return np.concatenate([rng.integers(0, N, (R, 1)).astype(float), boxes], axis=1)


@pytest.mark.parametrize("size,scale,H,W", [((2, 2), 1.0, 6, 7), ((3, 2), 0.5, 5, 9), ((7, 7), 1 / 16, 7, 7),
                                            ((3, 4), 0.25, 8, 6)])
def test_matches_the_loop_by_loop_reference(size, scale, H, W):
    rng = np.random.default_rng(H * W)
    x = rng.integers(-4, 5, (2, 3, H, W)).astype(np.float32)  # small integers: many ties
    rois = random_rois(rng, 40, 2, W / scale, H / scale)
    pool = RoIPool2d(size, scale)
    y = pool.forward(x, rois)
    y_ref, argmax_ref = roi_pool2d_forward_naive(x, rois, size, scale)
    assert_close(y, y_ref, rtol=0, name="y")
    np.testing.assert_array_equal(pool._cache[0], argmax_ref)
    dy = rng.standard_normal(y.shape)
    dx = pool.backward(dy)
    dx_ref = np.zeros(x.shape)
    for (r, c, ph, pw), idx in np.ndenumerate(argmax_ref):
        if idx >= 0:
            dx_ref[int(rois[r, 0]), c, idx // W, idx % W] += dy[r, c, ph, pw]
    assert_close(dx, dx_ref, rtol=1e-12, atol=1e-12, name="dx")


def test_gradcheck_float64_over_every_input_entry():
    rng = np.random.default_rng(5)
    x = (rng.permutation(2 * 3 * 6 * 7) * 0.01 - 1.2).reshape(2, 3, 6, 7)  # tie-free
    rois = np.array([[0, 0, 0, 27, 23], [1, 4, 4, 19, 15], [1, -8, 10, 12, 40], [0, 12, 0, 15, 3]], dtype=float)
    result = gradcheck(RoIPool2dFixed(RoIPool2d((3, 2), 0.25), rois), x)
    assert result.passed(1e-7), str(result)


def test_float32_in_float32_out():
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4)).astype(np.float32)
    assert RoIPool2d(2, 1.0).forward(x, np.array([[0, 0, 0, 3, 3]])).dtype == np.float32


@pytest.mark.parametrize("rois,match", [
    (np.zeros((2, 4)), r"rois must have shape \(R, 5\).*got shape \(2, 4\).*x of shape \(2, 3, 4, 4\)"),
    (np.zeros(5), r"rois must have shape \(R, 5\).*got shape \(5,\)"),
    (np.array([[0, 0, 0, np.nan, 2]]), r"rois row 0 is not finite.*nan"),
    (np.array([[0, 0, 0, 1, 1], [0, np.inf, 0, 1, 1]]), r"rois row 1 is not finite"),
    (np.array([[2, 0, 0, 1, 1]]), r"rois row 0 has batch index 2, not an integer in \[0, 2\).*\(2, 3, 4, 4\)"),
    (np.array([[-1, 0, 0, 1, 1]]), r"batch index -1"),
    (np.array([[0.5, 0, 0, 1, 1]]), r"batch index 0.5"),
])
def test_bad_rois_are_a_value_error_naming_them(rois, match):
    with pytest.raises(ValueError, match=r"RoIPool2d\(output_size=\(2, 2\).*" + match):
        RoIPool2d(2, 1.0).forward(np.zeros((2, 3, 4, 4), np.float32), rois)


def test_bad_settings_and_inputs():
    with pytest.raises(ValueError, match="output_size"):
        RoIPool2d((2, 0), 1.0)
    with pytest.raises(ValueError, match="spatial_scale"):
        RoIPool2d(2, 0.0)
    with pytest.raises(ValueError, match=r"RoIPool2d.*4-D input.*\(3, 4, 4\)"):
        RoIPool2d(2, 1.0).forward(np.zeros((3, 4, 4), np.float32), np.zeros((1, 5)))
    with pytest.raises(RuntimeError, match="backward.*before forward"):
        RoIPool2d(2, 1.0).backward(np.zeros((1, 1, 2, 2)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_parity_with_torchvision(dtype):
    torch = pytest.importorskip("torch")
    try:
        import torchvision.ops as ops
    except Exception as e:  # absent, or a build whose compiled operators do not load (a CUDA wheel)
        pytest.skip(f"torchvision.ops unavailable: {type(e).__name__}: {str(e)[:80]}")
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 4, 9, 11)).astype(dtype)
    x[:, :, ::2, ::3] = 0.5  # plateaus: ties must go the same way
    rois = random_rois(rng, 60, 2, 11 * 8, 9 * 8)
    for size, scale in (((7, 7), 1 / 8), ((3, 2), 1 / 4), ((2, 5), 1 / 16)):
        pool = RoIPool2d(size, scale)
        y = pool.forward(x, rois)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx = pool.backward(dy)
        tx = torch.tensor(x, requires_grad=True)
        ty = ops.roi_pool(tx, torch.tensor(rois, dtype=tx.dtype), size, scale)
        ty.backward(torch.tensor(dy))
        assert_close(y, ty.detach().numpy(), rtol=0, name=f"y {size} {scale}")
        assert_close(dx, tx.grad.numpy(), rtol=1e-6, atol=1e-6, name=f"dx {size} {scale}")


def test_cuda_kernels_under_the_simulator():
    """kernels/roi_pool.py against the CPU layer in Numba's CUDA simulator (a subprocess)."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(here.parent), env.get("PYTHONPATH", "")) if p)
    cmd = [sys.executable, "-m", "pytest", str(here / "roi_pool_cudasim.py"), "-q", "-p", "no:cacheprovider",
           "-o", "addopts="]
    proc = subprocess.run(cmd, cwd=here.parent, capture_output=True, text=True, timeout=600, env=env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    assert re.search(r"4 passed", output) and "skipped" not in output.strip().splitlines()[-1], output


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_cuda_kernels_lower_for_the_cuda_target(dtype):
    """Numba's CUDA front end types and lowers both kernels to NVVM IR (no device needed; the
    simulator runs plain Python and cannot check this); float32 must not compute in float64."""
    import re

    from numba import types

    from minidet.backend import simulator_enabled

    if simulator_enabled():
        pytest.skip("NUMBA_ENABLE_CUDASIM is set in this process")
    try:
        from numba.cuda.compiler import _compile_pyfunc_with_fixup
    except ImportError as e:
        pytest.skip(f"numba-cuda has no _compile_pyfunc_with_fixup: {e}")
    from kernels import roi_pool

    f = getattr(types, dtype)
    a4, i1, i2, i4 = (types.Array(f, 4, "C"), types.Array(types.int64, 1, "C"), types.Array(types.int64, 2, "C"),
                      types.Array(types.int64, 4, "C"))
    cases = [(roi_pool._forward_kernel, (a4, i1, i2, i2, i2, i2, a4, i4)),
             (roi_pool._backward_gather_kernel, (a4, i4, i1, i2, i2, i2, i2, a4))]
    for kernel, sig in cases:
        try:
            lib, _ = _compile_pyfunc_with_fixup(kernel, sig, device=False, cc=(8, 0), opt=True, abi="numba")
        except Exception as e:  # noqa: BLE001
            if "nvvm" in str(e).lower() or "NVVM" in type(e).__name__:
                pytest.skip(f"libNVVM unavailable: {e}")
            raise
        if dtype == "float32":
            ir = lib.get_llvm_str()
            assert not re.search(r"= (?:fadd|fsub|fmul|fdiv|fpext|fcmp \w+)[^\n]*\bdouble\b|call double @", ir), \
                kernel.__name__
