"""`minidet doctor` and minidet.backend's account of why the GPU path is unavailable."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from minidet import doctor

ROOT = Path(__file__).resolve().parent.parent


def _doctor(tmp_path, **env):
    full = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-m", "minidet", "doctor"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=300, env=full)


def test_doctor_prints_versions_simulator_and_gpu_path(tmp_path):
    proc = _doctor(tmp_path, NUMBA_ENABLE_CUDASIM="0")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for label in ("numpy", "numba", "numba-cuda", "cupy", "driver (libcuda)", "Numba CUDA simulator", "GPU path"):
        assert any(line.startswith(label) for line in out.splitlines()), f"no {label!r} line in:\n{out}"
    import numpy

    assert numpy.__version__ in out


def test_doctor_says_when_the_simulator_is_on(tmp_path):
    proc = _doctor(tmp_path, NUMBA_ENABLE_CUDASIM="1")
    assert proc.returncode == 0, proc.stderr
    assert "simulator" in proc.stdout and "ON (NUMBA_ENABLE_CUDASIM)" in proc.stdout
    assert "unavailable: NUMBA_ENABLE_CUDASIM is set" in proc.stdout


def test_doctor_shows_the_real_error_of_a_broken_cupy(tmp_path):
    """A CuPy that is installed but fails to import: its own error is printed, not swallowed."""
    fake = tmp_path / "site" / "cupy"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text('raise ImportError("libnvrtc.so.13: cannot open shared object file")\n')
    proc = _doctor(tmp_path, NUMBA_ENABLE_CUDASIM="0",
                   PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), str(ROOT)]))
    assert proc.returncode == 0, proc.stderr
    assert ("CuPy is installed but failed to import: ImportError: libnvrtc.so.13: cannot open shared object file"
            in proc.stdout), proc.stdout
    assert "to use a GPU" in proc.stdout


@pytest.mark.parametrize("driver,extra", [((12, 4), "gpu-cuda12"), ((13, 0), "gpu-cuda13"), ((13, 2), "gpu-cuda13")])
def test_doctor_advice_follows_the_drivers_cuda_version(driver, extra):
    text = doctor.advice(driver, "CuPy is not installed")
    assert f'minidet[{extra}]' in text and f"CUDA {driver[0]}.{driver[1]}" in text


def test_doctor_advice_without_a_driver_or_problem():
    assert "no NVIDIA driver" in doctor.advice(None, "CuPy is not installed")
    assert "update the driver" in doctor.advice((11, 8), "CuPy is not installed")
    assert doctor.advice((12, 4), None) is None
