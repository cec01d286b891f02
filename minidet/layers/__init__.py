"""The layer stack: each layer in its own module, forward/backward as pure functions
(`conv2d_forward(x, W, b, stride, padding) -> (y, cache)`, `conv2d_backward(dy, cache)`)
wrapped by a class that keeps the cache, `params` and `grads`. See base.py for the contract.
"""
from .base import Layer
from .batchnorm import BatchNorm2d, batchnorm2d_backward, batchnorm2d_forward
from .conv import Conv2d, conv2d_backward, conv2d_backward_naive, conv2d_forward, conv2d_forward_naive
from .dropout import Dropout
from .flatten import Flatten
from .leaky_relu import LeakyReLU, leaky_relu_backward, leaky_relu_forward
from .linear import Linear, linear_backward, linear_forward
from .maxpool import MaxPool2d, maxpool2d_backward, maxpool2d_forward
from .permute import Permute
from .reshape import Reshape
from .sequential import Sequential
from .tapped import TappedTrunk

__all__ = [
    "Layer", "BatchNorm2d", "batchnorm2d_forward", "batchnorm2d_backward", "Conv2d", "LeakyReLU", "MaxPool2d", "Linear", "Flatten", "Dropout", "Reshape", "Permute", "Sequential",
    "TappedTrunk",
    "conv2d_forward", "conv2d_backward", "conv2d_forward_naive", "conv2d_backward_naive",
    "leaky_relu_forward", "leaky_relu_backward", "maxpool2d_forward", "maxpool2d_backward",
    "linear_forward", "linear_backward",
]
