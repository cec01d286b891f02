"""benchmarks/gpu_model.py (the PREDICTED GPU times) and bench_gpu.py's measured-beside-predicted table."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _script(name):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


@pytest.fixture(scope="module")
def model():
    return _script("gpu_model")


@pytest.fixture(scope="module")
def fast_yolo():
    from minidet.models import fast_yolo

    return fast_yolo()  # built once: 45 M parameters to initialise


@pytest.fixture(scope="module")
def fast_yolo_ops(model, fast_yolo):
    return model.step_ops(64, 448, fast_yolo)


def test_step_flops_are_three_products_a_layer(fast_yolo_ops):
    """Forward FLOPs of Fast YOLO at 448², counted here from its published shape: each layer's
    product three times (forward, dW, dx), less the first layer's dx (the images need none)."""
    N, convs, size, flops = 64, [3, 16, 32, 64, 128, 256, 512, 1024, 1024, 1024], 448, 0
    first = None
    for i, (c_in, c_out) in enumerate(zip(convs, convs[1:])):
        layer = 2 * c_out * c_in * 9 * size * size * N
        first = first or layer
        flops += 3 * layer
        size = size // 2 if i < 6 else size
    flops -= first
    flops += 3 * 2 * N * (50176 * 256 + 256 * 4096 + 4096 * 1470)
    assert sum(op.flops for ops in fast_yolo_ops for op in ops) == flops


def test_memory_bound_and_product_times(model):
    h200 = model.DEVICES["H200"]
    copy = model.Op("copy", 10**9)
    assert copy.seconds(h200, tf32=False) == pytest.approx(1e9 / (4800e9 * 0.9))
    assert copy.seconds(h200, tf32=False, copy_fraction=1.0) == pytest.approx(1e9 / 4800e9)
    # 1 TFLOP on 1 MB: compute-bound, at the FP32 or the TF32 peak.
    gemm = model.Op("gemm", 10**6, flops=10**12)
    assert gemm.seconds(h200, tf32=False) == pytest.approx(1 / 66.9)
    assert gemm.seconds(h200, tf32=True) == pytest.approx(1 / 494.7)
    # A product on little work is bounded by its operands' traffic.
    thin = model.Op("gemv", 10**9, flops=10**6)
    assert thin.seconds(h200, tf32=True) == pytest.approx(copy.seconds(h200, tf32=True))


def test_step_prediction_is_ordered_by_the_devices_figures(model, fast_yolo):
    p = {(d, t): model.predict_step(d, t, 8, 448, model=fast_yolo) for d in model.DEVICES for t in (False, True)}
    assert p["H200", False]["step_ms"] < p["H100 SXM", False]["step_ms"]  # more bandwidth, same compute
    assert p["H200", True]["step_ms"] < p["H200", False]["step_ms"]       # TF32 speeds the products only
    assert p["H200", True]["memory_bound_ms"] == p["H200", False]["memory_bound_ms"]
    assert p["H200", False]["forward_ms"] < p["H200", False]["step_ms"]
    assert p["H200", False]["numba_launches"] < p["H200", False]["launches"]


@pytest.mark.parametrize("name,key", [("NVIDIA H200", "H200"), ("NVIDIA H100 80GB HBM3", "H100 SXM"),
                                      ("NVIDIA H100 PCIe", None), ("NVIDIA A100-SXM4-80GB", None)])
def test_device_names(model, name, key):
    assert model.device_for(name) == key


def test_bench_gpu_prints_predictions_beside_measurements(capsys, fast_yolo):
    """bench_gpu.py's table with made-up measurements: the predicted column comes from the model."""
    bench, model = _script("bench_gpu"), _script("gpu_model")
    results = {"device": "NVIDIA H200", "config": {"batch": 64, "size": 448}, "copy_bandwidth_GBps": 4000.0,
               "sections": {"kernels": [bench.row("leaky_relu forward 16×448²", 0.5, None, None, 8 * 10**8, 4000.0)],
                            "training step, TF32 on": [bench.row("fast_yolo train step 448² batch 64", 20.0)]}}
    bench.add_predictions(results, model=fast_yolo)
    kernel, step = results["sections"]["kernels"][0], results["sections"]["training step, TF32 on"][0]
    assert kernel["predicted_ms"] == pytest.approx(1e3 * 8e8 / (4800e9 * 0.9))
    assert step["predicted_ms"] == pytest.approx(model.predict_step("H200", True, 64, 448, model=fast_yolo)["step_ms"])
    bench.print_table(results)
    out = capsys.readouterr().out
    assert "PREDICTED" in out and f"{kernel['predicted_ms']:8.3f}" in out


def test_gpu_model_script_labels_its_figures_as_predictions():
    proc = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_model.py"), "--batch", "8"], capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("PREDICTIONS") and "predicted" in proc.stdout
    assert "im2col 3×448²" in proc.stdout and "H200" in proc.stdout


def test_gpu_check_script_stops_cleanly_without_a_gpu(tmp_path):
    """benchmarks/gpu_check.sh parses, runs `minidet doctor`, and without a device exits 1 saying so."""
    import os

    from minidet.backend import gpu_available

    script = BENCHMARKS / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    if gpu_available():
        pytest.skip("a GPU is here: the script would run the whole check")
    env = dict(os.environ, PYTHON=sys.executable, GPU_CHECK_LOGS=str(tmp_path / "logs"))
    proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "GPU path" in proc.stdout and "no usable GPU" in proc.stderr
    assert (tmp_path / "logs" / "doctor.txt").read_text().startswith("python")
