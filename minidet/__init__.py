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
# But a fully passive thread sleeps the moment a loop ends, and waking it for the next one
# cost about 0.5 ms a loop on the developers' (virtual) 2-core machine: the direct
# convolution's three loops of 3 → 4 on 112² (N 32) took 5.2 ms instead of 3.7. GNU
# OpenMP's GOMP_SPINCOUNT (it overrides the passive policy's 0) lets the threads spin 1000
# times first: enough for loops that follow each other, too short to fight a matrix
# product. The default training step: 74.3 → 71.8 ms (mean of 6 alternating runs each),
# and no slower with a busy process beside it (113 ms both, two runs each); 20,000 spins and
# more were slower.
# THREAD_POLICY is also handed to the notebooks' kernels (minidet.course.book, the tests).
THREAD_POLICY = {"OMP_WAIT_POLICY": "PASSIVE", "GOMP_SPINCOUNT": "1000", "OPENBLAS_THREAD_TIMEOUT": "4",
                 "OPENBLAS_NUM_THREADS": "1"}
for _name, _value in THREAD_POLICY.items():
    _os.environ.setdefault(_name, _value)

__version__ = "0.1.0"
