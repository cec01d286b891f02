"""minidet: one-shot object detection from scratch, every backward pass written out.

Submodules: backend (NumPy/CuPy dispatch), layers, gradcheck, optim, loss, boxes, eval,
models, data, train, cli.
"""
__version__ = "0.1.0"
