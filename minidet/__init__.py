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
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")

__version__ = "0.1.0"
