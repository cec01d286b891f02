"""minidet's hot operations, one module per operation (see kernels/README.md).

    im2col      im2col, col2im                      (+ im2col_reference, col2im_reference)
    leaky_relu  forward, backward                   (+ leaky_relu_reference)
    maxpool     forward, backward                   (+ maxpool2d_reference, maxpool2d_backward_reference)
    sgd         update                              (+ sgd_reference)
    yolo_loss   yolo_loss_gpu, yolo_loss_parts_gpu  (CUDA only; the NumPy forms are minidet.loss)

Each module holds the operation's plain NumPy reference (what the tests compare to), its
CPU form (numba.njit) and its CUDA form (numba.cuda.jit, a 1-D grid-stride loop), and one
entry point per direction that picks the backend from the array module (`_device.py`:
NumPy → CPU, CuPy → CUDA). Where the element rule is the same on both backends it is
written once as a plain function and compiled for each (`_launch.cpu_and_cuda`); where the
CPU keeps its own loop, a comment beside it gives the measurement that keeps it.

The CUDA forms are also reachable directly (`*_gpu`): they take CuPy arrays (NumPy arrays
only under Numba's simulator, NUMBA_ENABLE_CUDASIM=1, which runs the same source in the
tests). kernels/ needs NumPy and Numba only: nothing from minidet, no CuPy and no GPU to
import; CuPy is imported only by code that got a CuPy array.
"""
