"""CUDA kernels for minidet's hot paths, one module per operation (see kernels/README.md).

    im2col      im2col_gpu, col2im_gpu
    leaky_relu  leaky_relu_forward_gpu, leaky_relu_backward_gpu
    maxpool     maxpool2d_forward_gpu, maxpool2d_backward_gpu
    sgd         sgd_update_gpu
    yolo_loss   yolo_loss_gpu, yolo_loss_parts_gpu

Each kernel is a plain Python function wrapped by `numba.cuda.jit`, so Numba's CUDA
simulator (NUMBA_ENABLE_CUDASIM=1) runs the same source in the tests. The functions take
CuPy arrays (NumPy arrays only under the simulator). Nothing is imported here: importing
`kernels` needs neither CuPy nor a GPU, and CuPy is imported only by code that got a
CuPy array.
"""
