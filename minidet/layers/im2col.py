"""im2col / col2im for Conv2d: the operation lives in kernels/im2col.py (its layout, its
NumPy reference, its CPU and CUDA forms); these are its names as the course uses them."""
from __future__ import annotations

from kernels._device import output_size  # noqa: F401
from kernels.im2col import col2im, im2col, im2col_reference  # noqa: F401
