"""Sequential: layers applied in order; backward runs them in reverse."""
from __future__ import annotations

from .base import Layer
from .container import Container


class Sequential(Container):
    """Sequential(*layers). `layers` is the list; iterating yields the layers.

    Parameters are named "<index>.<key>" ("0.W", "0.b", "3.W", ...), the names used in
    saved checkpoints and in gradcheck reports.
    """

    def __init__(self, *layers):
        super().__init__()
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ValueError(f"Sequential: item {i} is a {type(layer).__name__}, not a Layer")
        self.layers = list(layers)

    def __iter__(self):
        return iter(self.layers)

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def forward(self, x):
        for layer in self.layers:
            x = layer.forward(x)
        self._cache = True
        return x

    def backward(self, dy):
        self._cached()
        for layer in reversed(self.layers):
            dy = layer.backward(dy)
        return dy

    def named_children(self):
        return ((str(i), layer) for i, layer in enumerate(self.layers))

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            if hasattr(layer, "output_shape"):
                shape = layer.output_shape(shape)
        return shape

    def extra_repr(self):
        return f"{len(self.layers)} layers"

    def __repr__(self):
        inner = "\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"{type(self).__name__}(\n{inner}\n)"
