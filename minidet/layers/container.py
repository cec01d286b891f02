"""`Container`: a layer made of other layers (`self.layers`), which passes mode changes,
parameters, devices and dtypes on to every one of them. Sequential, TappedTrunk and
FastRCNN define their own forward/backward (how data flows) and how their sub-layers are
named (`named_children`); what they hold in common lives here once, parameter and buffer
names included, so no container can save its parameters and forget its buffers."""
from __future__ import annotations

from .base import Layer


class Container(Layer):
    """Subclasses set or compute `layers`: the list of their sub-layers, in parameter order."""

    layers: list

    def train(self):
        self.training = True
        for layer in self.layers:
            layer.train()
        return self

    def eval(self):
        self.training = False
        for layer in self.layers:
            layer.eval()
        return self

    def parameters(self):
        for layer in self.layers:
            yield from layer.parameters()

    def named_children(self):
        """Yield `(name, layer)` for the sub-layers that hold parameters or buffers; a
        parameter of `layer` is named "<name>.<its own name>" (e.g. "trunk.3.W")."""
        raise NotImplementedError

    def named_parameters(self, prefix: str = ""):
        for name, layer in self.named_children():
            yield from layer.named_parameters(f"{prefix}{name}.")

    def named_buffers(self, prefix: str = ""):
        for name, layer in self.named_children():
            yield from layer.named_buffers(f"{prefix}{name}.")

    def to(self, device: str):
        for layer in self.layers:
            layer.to(device)
        self._cache = None
        return self

    def astype(self, dtype):
        for layer in self.layers:
            layer.astype(dtype)
        return self
