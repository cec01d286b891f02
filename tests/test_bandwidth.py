"""minidet.course.bandwidth: the byte and flop counts, and measurements that are sane numbers."""
import math

import numpy as np
import pytest

from minidet.course import bandwidth as bw
from minidet.backend import gpu_available


def test_byte_counts_by_hand():
    # 2·3·4·5 = 120 float32 elements.
    assert bw.copy_bytes(120, 4) == 960
    assert bw.leaky_relu_bytes(120, 4) == 960                      # read x, write y
    assert bw.leaky_relu_bytes(120, 4, backward=True) == 1440      # read y, dy; write dx
    # (1, 1, 4, 4) pooled 2×2/2 -> 4 outputs: read 16 floats, write 4 floats + 4 int32.
    assert bw.pooled_shape((1, 1, 4, 4), 2) == (1, 1, 2, 2)
    assert bw.maxpool_bytes((1, 1, 4, 4), 4, 2) == 16 * 4 + 4 * (4 + 4)
    assert bw.maxpool_bytes((1, 1, 4, 4), 4, 2, backward=True) == 16 * 4 + 4 * (4 + 4)
    # Overlapping 3×3/2 on 7×9 -> 3×4 outputs; float64.
    assert bw.pooled_shape((2, 3, 7, 9), 3, 2) == (2, 3, 3, 4)
    assert bw.maxpool_bytes((2, 3, 7, 9), 8, 3, 2) == 2 * 3 * 63 * 8 + 2 * 3 * 12 * (8 + 4)
    assert bw.maxpool_flops((2, 3, 7, 9), 3, 2) == 2 * 3 * 12 * 8
    assert bw.leaky_relu_flops(120) == 120


def test_measurement_properties():
    m = bw.Measurement("x", seconds=0.5, bytes_moved=2_000_000_000, flops=500_000_000)
    assert m.gbps == pytest.approx(4.0)
    assert m.intensity == pytest.approx(0.25)


def _check(rows, shape, itemsize):
    names = [m.name for m in rows]
    assert names == ["copy", "leaky_relu forward", "leaky_relu backward",
                     "maxpool 2×2/2 forward", "maxpool 2×2/2 backward"]
    n = int(np.prod(shape))
    assert rows[0].bytes_moved == 2 * n * itemsize
    assert rows[2].bytes_moved == 3 * n * itemsize
    for m in rows:
        assert math.isfinite(m.seconds) and m.seconds > 0, m
        assert math.isfinite(m.gbps) and 0 < m.gbps < 1e5, m  # 100 TB/s: no memory is that fast
        assert m.intensity < 1.0, m  # memory-bound: well under one flop a byte


def test_measure_cpu_gives_sane_positive_numbers():
    shape = (2, 4, 32, 30)
    rows = bw.measure(shape, device="cpu", repeats=3, warmup=1)
    _check(rows, shape, 4)
    text = bw.table(rows)
    assert "leaky_relu forward" in text and "of copy" in text


def test_time_call_and_measure_reject_bad_arguments():
    with pytest.raises(ValueError):
        bw.time_call(lambda: None, device="tpu")
    with pytest.raises(ValueError):
        bw.time_call(lambda: None, repeats=0)
    with pytest.raises(ValueError):
        bw.measure((4, 4), repeats=1)
    if not gpu_available():
        with pytest.raises(RuntimeError, match="no GPU"):
            bw.measure((1, 1, 4, 4), device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not gpu_available(), reason="no CUDA device (CuPy missing or sees none)")
def test_measure_gpu_gives_sane_positive_numbers():
    shape = (2, 16, 64, 64)
    _check(bw.measure(shape, device="cuda", repeats=3, warmup=1), shape, 4)
