"""The CUDA kernels of kernels/, on every backend this machine has.

1. Here, with no GPU needed: the package imports without CuPy or a device; NumPy inputs
   are refused outside the simulator; every kernel lowers through Numba's real CUDA
   front end (typing and LLVM IR, no device needed) for float32 and float64, with no
   float64 arithmetic in the float32 versions; the loss oracle agrees with
   minidet.loss.YoloLoss.
2. Numba's CUDA simulator: tests/kernels_cudasim.py, run in a subprocess with
   NUMBA_ENABLE_CUDASIM=1 (it must be set before numba.cuda is imported, and this
   process has imported it for real). The test fails with the subprocess's output.
3. A real GPU (`pytest -m gpu`, skipped when minidet.backend.gpu_available() is false):
   the same checks with CuPy arrays, then the layers, the loss and the optimizer end to
   end on CuPy against NumPy float64.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from kernels import im2col as im2col_op
from kernels import leaky_relu as leaky_op
from kernels import maxpool as maxpool_op
from kernels import sgd as sgd_op
from kernels.im2col import col2im_reference
from minidet.backend import gpu_available, simulator_enabled
from minidet.layers import Conv2d, LeakyReLU, MaxPool2d, Permute
from minidet.testing import assert_close

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def _load_checks():
    """tests/kernels_cudasim.py as a module (by path: tests/ need not be a package)."""
    spec = importlib.util.spec_from_file_location("kernels_cudasim", HERE / "kernels_cudasim.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


checks = _load_checks()
needs_gpu = pytest.mark.skipif(not gpu_available(), reason="no CUDA device (CuPy missing or sees none)")
# These check the real CUDA target; with NUMBA_ENABLE_CUDASIM=1 in this process numba.cuda is the simulator.
real_numba_cuda = pytest.mark.skipif(simulator_enabled(), reason="NUMBA_ENABLE_CUDASIM is set in this process")


# -- 1. no GPU needed -----------------------------------------------------------------------

def test_kernels_import_without_cupy_or_gpu():
    code = ("import sys; sys.modules['cupy'] = None\n"  # an import of cupy would now fail
            "import kernels, kernels.im2col, kernels.leaky_relu, kernels.maxpool, kernels.sgd, kernels.yolo_loss\n"
            "assert not [m for m in sys.modules if m.split('.')[0] == 'minidet'], 'kernels imported minidet'\n"
            "print('ok')")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=_env(NUMBA_ENABLE_CUDASIM="0"))
    assert proc.returncode == 0 and "ok" in proc.stdout, proc.stdout + proc.stderr


@real_numba_cuda
def test_numpy_inputs_are_refused_outside_the_simulator():
    from kernels.im2col import im2col_gpu
    from kernels.yolo_loss import yolo_loss_gpu

    with pytest.raises(TypeError, match="CuPy"):
        im2col_gpu(np.zeros((1, 1, 3, 3), np.float32), 3, 1, 1)
    with pytest.raises(TypeError, match="CuPy"):
        yolo_loss_gpu(np.zeros((1, 1, 1, 12)), np.zeros((1, 1, 1, 7)), S=1, B=2, C=2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cpu_entry_points_match_the_references(dtype):
    """Each operation's entry point, given NumPy arrays, runs its CPU form: against the
    NumPy reference beside it in kernels/ (tie-heavy max-pool input, overlapping windows,
    undecayed tail of the SGD buffer)."""
    rng = np.random.default_rng(0)
    x = rng.integers(-2, 3, size=(2, 3, 7, 6)).astype(dtype)
    dy = rng.standard_normal(x.shape).astype(dtype)
    y = leaky_op.forward(x, 0.1)
    np.testing.assert_array_equal(y, leaky_op.leaky_relu_reference(x, x.dtype.type(0.1)))
    np.testing.assert_array_equal(leaky_op.backward(y, dy, 0.1), np.where(x > 0, dy, x.dtype.type(0.1) * dy))
    for k, s in ((3, 2), (2, 1), (2, 2)):
        y, argmax = maxpool_op.forward(x, k, s)
        y_ref, a_ref = maxpool_op.maxpool2d_reference(x, k, s)
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(argmax, a_ref)
        g = rng.standard_normal(y.shape).astype(dtype)
        assert_close(maxpool_op.backward(g, argmax, x.shape, k, s), maxpool_op.maxpool2d_backward_reference(g, a_ref, x.shape),
                     rtol=1e-6, atol=1e-6, name=f"maxpool backward k{k} s{s}")
    cols = im2col_op.im2col(x, 3, 2, 1)
    np.testing.assert_array_equal(cols, im2col_op.im2col_reference(x, 3, 2, 1))
    assert_close(im2col_op.col2im(cols, x.shape, 3, 2, 1), col2im_reference(cols, x.shape, 3, 2, 1), rtol=1e-6,
                 atol=1e-6)
    w, g, v = (rng.standard_normal(50).astype(dtype) for _ in range(3))
    w_ref, v_ref = sgd_op.sgd_reference(w.astype(np.float64), g, v.astype(np.float64), 0.1, 0.9, 0.05, n_decayed=30)
    sgd_op.update(w, g, v, 0.1, 0.9, 0.05, n_decayed=30)
    assert_close(w, w_ref, rtol=1e-6, atol=1e-6, name="sgd w")
    assert_close(v, v_ref, rtol=1e-6, atol=1e-6, name="sgd v")


@real_numba_cuda
def test_launch_config_covers_the_work():
    from kernels._launch import MAX_BLOCKS, THREADS_PER_BLOCK, launch_config

    assert launch_config(1) == (1, THREADS_PER_BLOCK)
    assert launch_config(THREADS_PER_BLOCK + 1) == (2, THREADS_PER_BLOCK)
    assert launch_config(10**12) == (MAX_BLOCKS, THREADS_PER_BLOCK)  # the grid-stride loop does the rest


def _lowering_cases():
    """Every kernel and dtype, with the signatures kernels/machine_code.py compiles to SASS."""
    from kernels.machine_code import DTYPES, KERNELS, _signature, py_func

    for dtype in DTYPES:
        for kernel in KERNELS:
            yield dtype, kernel.name, py_func(kernel), _signature(kernel.args, dtype)


@real_numba_cuda
def test_kernels_lower_for_the_cuda_target():
    """Numba's CUDA front end types and lowers every kernel to NVVM IR: what the simulator,
    which runs plain Python, cannot check. float32 kernels must not compute in float64 (a
    bare literal or `** 2` makes Numba do so). Needs libNVVM, not a device; uses a private
    Numba entry point (the public compile_ptx also needs NVRTC), so it skips if that moved.
    """
    try:
        from numba.cuda.compiler import _compile_pyfunc_with_fixup
    except ImportError as e:
        pytest.skip(f"numba-cuda has no _compile_pyfunc_with_fixup: {e}")
    double_op = re.compile(r"= (?:fadd|fsub|fmul|fdiv|frem|fpext|sitofp|uitofp|fcmp \w+)[^\n]*\bdouble\b"
                           r"|call double @")
    failures = []
    for ft, name, kernel, sig in _lowering_cases():
        try:
            lib, _ = _compile_pyfunc_with_fixup(kernel, sig, device=False, cc=(8, 0), opt=True, abi="numba")
            ir = lib.get_llvm_str()
        except Exception as e:  # noqa: BLE001
            if "NVVM" in type(e).__name__ or "nvvm" in str(e).lower() or "libNVVM" in str(e):
                pytest.skip(f"libNVVM unavailable: {e}")
            failures.append(f"{name} ({ft}): {type(e).__name__}: {str(e)[:300]}")
            continue
        if str(ft) == "float32":
            doubles = double_op.findall(ir)
            if doubles:
                failures.append(f"{name} (float32) computes in float64: {doubles[:3]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("case", checks.YOLO_CASES)
def test_yolo_oracle_matches_minidet_loss(case):
    """The cell-by-cell oracle (minidet.loss_cells) against minidet.loss, float64."""
    from minidet.loss import YoloLoss, assign
    from minidet.loss_cells import yolo_loss_reference

    pred, target, S, B, C, expect = checks.yolo_case(case, np.float64)
    loss, comps, dpred, _, responsible = yolo_loss_reference(pred, target, S, B, C, 5.0, 0.5)
    ref = YoloLoss(S, B, C, 5.0, 0.5)
    assert_close(loss, ref.forward(pred, target), rtol=1e-12)
    for name, value in ref.components.items():
        assert_close(comps[name], value, rtol=1e-12, atol=1e-15, name=name)
    assert_close(dpred, ref.backward(), rtol=1e-12, atol=1e-15, name="dpred")
    np.testing.assert_array_equal(responsible, assign(pred, target, B)[0])


def test_col2im_oracle_is_the_cpu_adjoint():
    from minidet.layers import im2col as cpu

    x = checks.im2col_input(np.float64, shape=(2, 2, 5, 4))
    k, s, p = 3, 2, 1
    cols = np.random.default_rng(1).standard_normal(cpu.im2col(x, k, s, p).shape)
    assert_close(col2im_reference(cols, x.shape, k, s, p), cpu.col2im(cols, x.shape, k, s, p), rtol=1e-12,
                 atol=1e-14)
    # <im2col(x), cols> = <x, col2im(cols)>: the fold is the unfold's adjoint.
    assert_close(np.vdot(cpu.im2col(x, k, s, p), cols), np.vdot(x, col2im_reference(cols, x.shape, k, s, p)),
                 rtol=1e-12)


# -- 2. the CUDA simulator ----------------------------------------------------------------------

def _env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def test_kernels_under_the_cuda_simulator():
    """Every kernel against its NumPy reference, in Numba's CUDA simulator (a subprocess)."""
    cmd = [sys.executable, "-m", "pytest", str(HERE / "kernels_cudasim.py"), "-q", "-rs",
           "-p", "no:cacheprovider", "-o", "addopts=", "-W", "ignore::pytest.PytestUnknownMarkWarning"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env=_env(NUMBA_ENABLE_CUDASIM="1"))
    output = proc.stdout + proc.stderr
    summary = output.strip().splitlines()[-1] if output.strip() else ""
    assert proc.returncode == 0, f"simulator run failed ({' '.join(cmd)}):\n{output}"
    # A run where every test skipped (the variable not reaching numba) also exits 0.
    assert re.search(r"\d+ passed", summary) and "skipped" not in summary, f"unexpected summary:\n{output}"


# -- 3. a real GPU (pytest -m gpu) ------------------------------------------------------------

def _cupy():
    import cupy

    return cupy


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", checks.DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("k,stride,padding", checks.IM2COL_CASES)
def test_gpu_im2col_col2im(dtype, k, stride, padding):
    checks.check_im2col(_cupy(), dtype, k, stride, padding)


@pytest.mark.gpu
@needs_gpu
def test_gpu_im2col_allocates_on_the_device():
    checks.check_im2col_allocates(_cupy())


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", checks.DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("slope", [0.1, 0.0])
def test_gpu_leaky_relu(dtype, slope):
    checks.check_leaky_relu(_cupy(), dtype, slope)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", checks.DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("k,stride", checks.MAXPOOL_CASES)
def test_gpu_maxpool(dtype, k, stride):
    checks.check_maxpool(_cupy(), dtype, k, stride)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", checks.DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("weight_decay", [5e-4, 0.0])
def test_gpu_sgd(dtype, weight_decay):
    checks.check_sgd(_cupy(), dtype, weight_decay)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", checks.DTYPES, ids=["f32", "f64"])
def test_gpu_sgd_one_launch_for_all_parameters(dtype):
    checks.check_sgd_one_launch(_cupy(), dtype, to_device="cuda")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("dtype", checks.DTYPES, ids=["f32", "f64"])
@pytest.mark.parametrize("case", checks.YOLO_CASES)
def test_gpu_yolo_loss(dtype, case):
    checks.check_yolo_loss(_cupy(), dtype, case)


def _layer_pair(layer_factory, dtype=np.float32):
    """The same layer twice: float32 (or dtype) on the GPU, and a float64 NumPy copy."""
    cpu = layer_factory()
    gpu = layer_factory()
    for key, value in cpu.params.items():
        gpu.params[key] = value.astype(dtype)
        cpu.params[key] = value.astype(np.float64)
    return cpu, gpu.to("cuda")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("make", [
    lambda: Conv2d(3, 4, 3, stride=1, padding=1),
    lambda: Conv2d(3, 4, 3, stride=2, padding=1),
    lambda: Conv2d(3, 4, 1),
    lambda: LeakyReLU(0.1),
    lambda: MaxPool2d(2),
    lambda: MaxPool2d(3, 2),
    lambda: MaxPool2d(3, 1),
    lambda: Permute(0, 2, 3, 1),
], ids=["conv3s1p1", "conv3s2p1", "conv1", "leaky", "pool2", "pool3s2", "pool3s1", "permute"])
def test_gpu_layers_end_to_end(make):
    """A layer on CuPy float32 against the same layer on NumPy float64: forward, dx, grads."""
    cp = _cupy()
    cpu, gpu = _layer_pair(make)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 9, 11)).astype(np.float32)
    y_cpu = cpu.forward(x.astype(np.float64))
    y_gpu = gpu.forward(cp.asarray(x))
    assert isinstance(y_gpu, cp.ndarray) and y_gpu.dtype == np.float32
    tol = dict(rtol=1e-4, atol=1e-5)  # cuBLAS float32 sums in its own order
    assert_close(y_gpu, y_cpu, name=f"{cpu!r} forward", **tol)
    dy = rng.standard_normal(y_cpu.shape).astype(np.float32)
    assert_close(gpu.backward(cp.asarray(dy)), cpu.backward(dy.astype(np.float64)), name=f"{cpu!r} dx", **tol)
    for key in cpu.grads:
        assert_close(gpu.grads[key], cpu.grads[key], name=f"{cpu!r} d{key}", **tol)


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("head", ["fc", "conv"])
def test_gpu_model_step_against_numpy(head):
    """A whole reduced model after model.to("cuda"), float32, against its float64 NumPy copy:
    the grid, the loss and every parameter's gradient of one step (dropout off on both)."""
    cp = _cupy()
    from minidet.loss import YoloLoss
    from minidet.models import reduced_fast_yolo

    cpu, gpu = reduced_fast_yolo(56, 0.125, seed=0, head=head), reduced_fast_yolo(56, 0.125, seed=0, head=head)
    for layer in cpu.layers:
        for key, value in layer.params.items():
            layer.params[key] = value.astype(np.float64)
    for model in (cpu, gpu):
        for layer in model.layers:
            if hasattr(layer, "p"):  # Dropout: its draws differ between the devices
                layer.p = 0.0
        model.train()
    gpu.to("cuda")
    rng = np.random.default_rng(0)
    x = rng.random((2, 3, 56, 56), dtype=np.float32)
    target = np.zeros((2, 7, 7, 25), np.float32)
    target[0, 3, 4, :9] = [0.4, 0.6, 0.3, 0.5, 1, 0, 0, 0, 1]
    target[1, 1, 2, :6] = [0.7, 0.2, 0.2, 0.1, 1, 1]
    loss_cpu, loss_gpu = YoloLoss(), YoloLoss()
    pred_cpu = cpu.forward(x.astype(np.float64))
    pred_gpu = gpu.forward(cp.asarray(x))
    assert isinstance(pred_gpu, cp.ndarray) and pred_gpu.dtype == np.float32
    scale = float(np.abs(pred_cpu).max())
    assert_close(pred_gpu, pred_cpu, rtol=1e-4, atol=1e-5 * scale, name=f"{head} grid")
    value_cpu = loss_cpu.forward(pred_cpu, target.astype(np.float64))
    value_gpu = loss_gpu.forward(pred_gpu, cp.asarray(target))
    assert_close(value_gpu, value_cpu, rtol=1e-4, name=f"{head} loss")
    cpu.backward(loss_cpu.backward())
    gpu.backward(loss_gpu.backward())
    grads_cpu = {name: g[k] for name, _, g, k in cpu.named_parameters()}
    for name, _, g, k in gpu.named_parameters():
        assert isinstance(g[k], cp.ndarray), name
        expected = grads_cpu[name]
        assert_close(g[k], expected, rtol=1e-3, atol=1e-4 * float(np.abs(expected).max()), name=name)


def test_yolo_loss_gpu_path_is_checked():
    from minidet.loss import YoloLoss

    assert YoloLoss().gpu_path == "fused" and YoloLoss(gpu_path="vectorised").gpu_path == "vectorised"
    with pytest.raises(ValueError, match="gpu_path"):
        YoloLoss(gpu_path="fast")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("case", checks.YOLO_CASES)
def test_gpu_loss_fused_against_vectorised(case):
    """YoloLoss on CuPy by its two paths, the fused kernel and the vectorised array code,
    against each other and both against NumPy float64."""
    cp = _cupy()
    from minidet.loss import YoloLoss

    pred, target, S, B, C, _ = checks.yolo_case(case, np.float32)
    ref = YoloLoss(S, B, C)
    value = ref.forward(pred.astype(np.float64), target.astype(np.float64))
    dpred = ref.backward()
    fused, vectorised = YoloLoss(S, B, C, gpu_path="fused"), YoloLoss(S, B, C, gpu_path="vectorised")
    v_fused = fused.forward(cp.asarray(pred), cp.asarray(target))
    d_fused = fused.backward()
    assert fused._cache[0] == "gpu", "the fused path did not run the kernel"
    v_vec = vectorised.forward(cp.asarray(pred), cp.asarray(target))
    d_vec = vectorised.backward()
    assert vectorised._cache[0] != "gpu" and vectorised.responsible is not None, "the vectorised path ran the kernel"
    assert isinstance(d_fused, cp.ndarray) and isinstance(d_vec, cp.ndarray)
    assert_close(v_fused, v_vec, rtol=1e-5, name="loss fused vs vectorised")
    assert_close(d_fused, d_vec, rtol=1e-5, atol=1e-6, name="dpred fused vs vectorised")
    for name in ref.components:
        assert_close(fused.components[name], vectorised.components[name], rtol=1e-5, atol=1e-7, name=name)
    assert_close(v_fused, value, rtol=1e-5)
    assert_close(d_fused, dpred, rtol=1e-5, atol=1e-6)
    assert_close(v_vec, value, rtol=1e-5)
    assert_close(d_vec, dpred, rtol=1e-5, atol=1e-6)


@pytest.mark.gpu
@needs_gpu
def test_gpu_sgd_through_the_optimizer():
    cp = _cupy()
    from minidet.optim import SGD

    cpu, gpu = _layer_pair(lambda: Conv2d(2, 3, 3, padding=1), dtype=np.float32)
    rng = np.random.default_rng(1)
    for key, value in cpu.params.items():
        g = rng.standard_normal(value.shape)
        cpu.grads[key], gpu.grads[key] = g, cp.asarray(g.astype(np.float32))
    opt_cpu, opt_gpu = SGD(cpu, lr=0.1), SGD(gpu, lr=0.1)
    for _ in range(3):
        opt_cpu.step()
        opt_gpu.step()
    for key in cpu.params:
        assert_close(gpu.params[key], cpu.params[key], rtol=1e-5, atol=1e-6, name=key)
