"""A model summary: every layer with its output shape, parameter count and cost."""
from __future__ import annotations

from ..layers import Conv2d, Linear


def layer_flops(layer, input_shape, output_shape) -> int:
    """Floating-point operations of one forward pass for one image (a multiply-add counts 2).

    Only convolutions and fully connected layers are counted: the rest is negligible
    (and is what the paper's figure counts).
    """
    if isinstance(layer, Conv2d):
        _, F, Ho, Wo = output_shape
        return 2 * Ho * Wo * F * layer.in_channels * layer.kernel_size**2
    if isinstance(layer, Linear):
        return 2 * layer.in_features * layer.out_features
    return 0


def profile(model):
    """Rows (index, layer, output shape without N, params, flops) and the totals."""
    shape = (1, 3, model.input_size, model.input_size)
    rows, total_params, total_flops = [], 0, 0
    for i, layer in enumerate(model.layers):
        out = layer.output_shape(shape) if hasattr(layer, "output_shape") else shape
        params = sum(int(v.size) for v in layer.params.values())
        flops = layer_flops(layer, shape, out)
        rows.append((i, layer, out[1:], params, flops))
        total_params += params
        total_flops += flops
        shape = out
    return rows, total_params, total_flops


def summary(model) -> str:
    rows, params, flops = profile(model)
    name = model.arch["name"]
    lines = [f"{name}: input (N, 3, {model.input_size}, {model.input_size}) → (N, {model.S}, {model.S}, "
             f"{5 * model.B + model.C})",
             f"{'#':>3}  {'layer':<52} {'output':>18} {'params':>12} {'MFLOP':>10}"]
    for i, layer, out, p, f in rows:
        lines.append(f"{i:>3}  {layer!r:<52} {str(tuple(out)):>18} {p:>12,} {f / 1e6:>10.1f}")
    lines.append(f"total: {params:,} parameters ({params / 1e6:.1f} M), "
                 f"{flops / 1e9:.2f} GFLOP per {model.input_size}×{model.input_size} image (forward)")
    return "\n".join(lines)
