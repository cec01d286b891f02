"""The layer contract every minidet layer follows.

- `forward(x) -> y` computes on the device where `x` lives and caches what `backward` needs;
- `backward(dy) -> dx` returns the gradient with respect to the input and *overwrites*
  `grads` (one entry per entry of `params`, same shape);
- `params` is the source of truth: `forward` reads its arrays from the dict, so replacing
  an entry (with a float64 copy, say) takes effect;
- `train()` / `eval()` switch the mode (only Dropout behaves differently).
"""
from __future__ import annotations

from ..backend import get_array_module, to_device


class Layer:
    """Base class: holds `params`, `grads`, the training flag and the forward cache."""

    def __init__(self):
        self.params: dict = {}
        self.grads: dict = {}
        self.training = True
        self._cache = None

    # -- the contract -------------------------------------------------------------
    def forward(self, x):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    def train(self):
        self.training = True
        return self

    def eval(self):
        self.training = False
        return self

    # -- parameters ---------------------------------------------------------------
    def parameters(self):
        """Yield `(params, grads)` dict pairs; the optimizer updates `params[k]` from `grads[k]`."""
        if self.params:
            yield self.params, self.grads

    def named_parameters(self, prefix: str = ""):
        """Yield `(name, params, grads, key)` for every parameter array, e.g. ("3.W", p, g, "W")."""
        for key in self.params:
            yield prefix + key, self.params, self.grads, key

    def named_buffers(self, prefix: str = ""):
        """Yield `(name, buffers, key)` for every array of state that is not a parameter
        (BatchNorm2d's running statistics): saved with the model, never optimized."""
        for key in getattr(self, "buffers", {}):
            yield prefix + key, self.buffers, key

    def num_parameters(self) -> int:
        return sum(int(p[k].size) for _, p, _, k in self.named_parameters())

    def to(self, device: str):
        """Move parameters (and gradients) to "cpu" or "cuda"; returns self."""
        for d in (self.params, self.grads):
            for k in d:
                if d[k] is not None:
                    d[k] = to_device(d[k], device)
        self._cache = None
        if hasattr(self, "_workspace"):
            self._workspace.clear()
        return self

    def astype(self, dtype):
        """Cast parameters to `dtype` (float32 or float64); returns self."""
        for k, v in self.params.items():
            self.params[k] = v.astype(dtype)
        self.grads = {k: None for k in self.params}
        self._cache = None
        if hasattr(self, "_workspace"):
            self._workspace.clear()
        return self

    # -- helpers for subclasses ---------------------------------------------------
    def _cached(self):
        if self._cache is None:
            raise RuntimeError(f"{self.label()}: backward() called before forward()")
        return self._cache

    def _check_ndim(self, x, ndim: int, layout: str):
        if getattr(x, "ndim", None) != ndim:
            shape = getattr(x, "shape", type(x).__name__)
            raise ValueError(f"{self.label()}: expected a {ndim}-D input {layout}, got shape {shape}")

    def _check_float(self, x):
        xp = get_array_module(x)
        if not xp.issubdtype(x.dtype, xp.floating):
            raise ValueError(f"{self.label()}: expected a floating-point input, got dtype {x.dtype}")

    def _check_input(self, x, layout: str, width: int | None = None, what: str = "channels"):
        """A floating-point input of layout's rank ("(N, C, H, W)": 4-D) whose axis 1 holds `width`."""
        self._check_ndim(x, layout.count(",") + 1, layout)
        self._check_float(x)
        if width is not None and x.shape[1] != width:
            raise ValueError(f"{self.label()}: input has {x.shape[1]} {what}, expected {width} "
                             f"(input shape {tuple(x.shape)})")

    def label(self) -> str:
        """One line naming the layer and its settings, for error messages."""
        return f"{type(self).__name__}({self.extra_repr()})"

    def __repr__(self):
        return self.label()

    def extra_repr(self) -> str:
        return ""
