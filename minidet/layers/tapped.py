"""TappedTrunk: a trunk of layers run in order, with heads reading some of its feature maps.

A network that branches (SSD: predictors on several maps of one trunk) is not a Sequential.
Here trunk layer i's output goes to trunk layer i + 1 AND, when i is tapped, to a head.
Backward walks the trunk in reverse; at a tapped layer the gradient of its output is the
SUM of what comes back from the next trunk layer and from its head (the multivariate
chain rule: the map feeds two consumers).
"""
from __future__ import annotations

from .base import Layer
from .container import Container


class TappedTrunk(Container):
    """TappedTrunk(trunk, heads): `trunk` a list of layers, `heads` a dict {trunk index: head layer}.

    forward(x) -> list of the heads' outputs, in increasing tap index.
    backward(dys) -> dx: `dys` one gradient per head output, same order and shapes.
    Parameters are named "trunk.<i>.<key>" and "heads.<tap index>.<key>". The last trunk
    layer must be tapped (a layer after the last tap would compute nothing that is used).
    """

    def __init__(self, trunk, heads: dict):
        super().__init__()
        self.trunk = list(trunk)
        self.heads = {int(i): heads[i] for i in sorted(heads)}
        for i, layer in enumerate(self.trunk + list(self.heads.values())):
            if not isinstance(layer, Layer):
                raise ValueError(f"TappedTrunk: item {i} is a {type(layer).__name__}, not a Layer")
        if not self.heads or any(not 0 <= i < len(self.trunk) for i in self.heads):
            raise ValueError(f"TappedTrunk: tap indices must lie in [0, {len(self.trunk)}), got {list(heads)}")
        if max(self.heads) != len(self.trunk) - 1:
            raise ValueError(f"TappedTrunk: the last trunk layer ({len(self.trunk) - 1}) must be tapped, "
                             f"taps are {list(self.heads)}")

    @property
    def layers(self):
        """Every layer, trunk then heads (for whatever searches a model's layers)."""
        return self.trunk + list(self.heads.values())

    def forward(self, x):
        outputs = []
        for i, layer in enumerate(self.trunk):
            x = layer.forward(x)
            if i in self.heads:
                outputs.append(self.heads[i].forward(x))
        self._cache = True
        return outputs

    def backward(self, dys):
        self._cached()
        if len(dys) != len(self.heads):
            raise ValueError(f"TappedTrunk.backward: expected {len(self.heads)} head gradients, got {len(dys)}")
        from_heads = dict(zip(self.heads, dys))
        grad = None
        for i in reversed(range(len(self.trunk))):
            if i in self.heads:
                g = self.heads[i].backward(from_heads[i])
                grad = g if grad is None else grad + g
            grad = self.trunk[i].backward(grad)
        return grad

    def named_children(self):
        yield from ((f"trunk.{i}", layer) for i, layer in enumerate(self.trunk))
        yield from ((f"heads.{i}", layer) for i, layer in self.heads.items())

    def extra_repr(self):
        return f"{len(self.trunk)} trunk layers, taps at {list(self.heads)}"
