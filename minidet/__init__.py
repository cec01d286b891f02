"""minidet: one-shot object detection from scratch, every backward pass written out.

Submodules: backend (NumPy/CuPy dispatch), layers, gradcheck, optim, loss, boxes, eval,
models, data, train, inference, visualize, cli.
"""
import os as _os

# Idle BLAS and OpenMP threads (OpenBLAS's, and Numba's parallel loops on the OpenMP
# layer) spin by default. Between a Numba loop and a BLAS product they then fight for
# the cores, and on a busy 2-core machine a training step measured 2–20× slower.
# Passive waiting costs nothing measurable when the machine is idle. These only take
# effect if set before the libraries load; a user's own setting wins.
# OpenBLAS runs one thread per call: its threads wait for each other, and with one busy
# process beside it a 2-core training step measured 25× slower; minidet cuts the large
# products over its own threads instead (minidet/matmul.py says more).
# THREAD_POLICY is also handed to the notebooks' kernels (minidet.course.book, the tests).
THREAD_POLICY = {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_THREAD_TIMEOUT": "4", "OPENBLAS_NUM_THREADS": "1"}
for _name, _value in THREAD_POLICY.items():
    _os.environ.setdefault(_name, _value)

__version__ = "0.1.0"
