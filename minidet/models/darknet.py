"""YOLO v1 networks described by darknet `.cfg` files, and their `.weights` files.

    darknet_model(layers, input_size, S, B, C)   a YoloModel from parsed cfg sections
    read_cfg(path) -> (net options, [sections])  the cfg as darknet reads it
    import_darknet(cfg, weights) -> model        the network of `cfg` with the weights of `weights`

Supported: the v1 networks — the 2015 `yolo.cfg` and `yolo-tiny.cfg` (`[detection]` on
fully connected layers, no batch norm) and the 2016 `tiny-yolo.cfg` (batch norm): sections
`[net]`, `[convolutional]` (with or without `batch_normalize`), `[maxpool]`, `[connected]`,
`[dropout]`, and a final `[detection]`; activations `leaky` (slope 0.1) and `linear`.

The weights file (darknet's parser.c, `load_weights_upto`), little-endian:
    int32 major, minor, revision; then `seen`, the images trained on: a uint64 when
    major·10 + minor ≥ 2 (and both < 1000), else an int32. major or minor > 1000 means the
    connected layers' matrices are stored transposed, (inputs, outputs).
    Then float32 arrays, layer by layer in cfg order:
      convolutional: biases (n); if batch_normalize: scales (n), rolling mean (n), rolling
                     variance (n); weights (n, c, k, k) — PyTorch's and minidet's layout;
      connected:     biases (out); weights (out, in) (or (in, out) when transposed).
A convolution with batch norm has no bias of its own: darknet normalizes the convolution's
output, scales it and adds `biases` — minidet's Conv2d with b = 0, then BatchNorm2d with
gamma = scales, beta = biases. (darknet's CPU code divides by sqrt(var) + 1e-6, its GPU
code by sqrt(var + 1e-5); minidet uses the latter, PyTorch's.)

The detection layer's input, S·S·((1 + 4)·B + C) values, is ordered by kind: all cells'
C class probabilities (cell-major), then all cells' B confidences, then all cells' B boxes
[x, y, sqrt_w, sqrt_h]; cell i = row·S + column. minidet's grid is per cell: B boxes
[x, y, sqrt_w, sqrt_h, conf], then C classes. The rows of the last connected layer are
permuted once, at import (`detection_permutation`), so the imported model computes
minidet's layout directly. Input: RGB in [0, 1], resized to the cfg's side (448).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from kernels._device import output_size

from ..errors import MinidetError
from ..layers import BatchNorm2d, Conv2d, Dropout, Flatten, LeakyReLU, Linear, MaxPool2d, Reshape
from .yolo import YoloModel

SUPPORTED = ("convolutional", "maxpool", "connected", "dropout", "detection")


class DarknetError(MinidetError, ValueError):
    """A cfg or weights file that minidet cannot read. The message names the file."""


def read_cfg(path):
    """(net options, [section dicts]) of a darknet cfg, parsed as darknet's `read_cfg` does:
    whitespace removed from every line, `#` and `;` lines skipped, `[type]` opens a section,
    `key=value` fills it. Each section dict has "type" and the raw string values."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DarknetError(f"{path}: cfg file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise DarknetError(f"{path}: cannot read the cfg ({e})") from None
    sections = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = "".join(raw.split())
        if not line or line[0] in "#;":
            continue
        if line[0] == "[":
            if not line.endswith("]"):
                raise DarknetError(f"{path}, line {number}: malformed section header {raw.strip()!r}")
            sections.append({"type": line[1:-1]})
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            sections[-1][key] = value
        else:
            raise DarknetError(f"{path}, line {number}: expected [section] or key=value, got {raw.strip()!r}")
    if not sections or sections[0]["type"] not in ("net", "network"):
        raise DarknetError(f"{path}: a darknet cfg starts with a [net] section")
    return sections[0], sections[1:]


def _number(section, key, default, path, index, kind=int):
    value = section.get(key, default)
    if value is None:
        raise DarknetError(f"{path}: [{section['type']}] (layer {index}) has no {key}=")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise DarknetError(f"{path}: [{section['type']}] (layer {index}): {key}={value!r} is not a number") from None


def layer_specs(net, sections, path="cfg"):
    """The cfg's layers as JSON-able dicts (what a checkpoint's architecture stores), checked;
    returns (specs, input_size, S, B, C)."""
    height, width = _number(net, "height", None, path, "net"), _number(net, "width", None, path, "net")
    channels = _number(net, "channels", 3, path, "net")
    if height != width or channels != 3:
        raise DarknetError(f"{path}: [net] must be square RGB (height = width, channels = 3), got "
                           f"{height}x{width}x{channels}")
    specs, shape = [], (3, height, width)
    for index, s in enumerate(sections):
        kind = s["type"]
        if kind not in SUPPORTED:
            raise DarknetError(f"{path}: layer {index} is [{kind}], which minidet does not import "
                               f"(supported: {', '.join(SUPPORTED)})")
        if kind == "detection" and index != len(sections) - 1:
            raise DarknetError(f"{path}: [detection] (layer {index}) must be the last layer")
        num = lambda key, default, k=int: _number(s, key, default, path, index, k)  # noqa: E731
        if kind == "convolutional":
            size, stride = num("size", 1), num("stride", 1)
            spec = dict(type=kind, filters=num("filters", 1), size=size, stride=stride,
                        padding=size // 2 if num("pad", 0) else num("padding", 0),
                        batch_normalize=num("batch_normalize", 0), activation=s.get("activation", "logistic"))
            if num("flipped", 0) or num("groups", 1) != 1 or num("binary", 0) or num("xnor", 0):
                raise DarknetError(f"{path}: [convolutional] (layer {index}) uses flipped, groups, binary or "
                                   f"xnor, which minidet does not import")
            k, p = spec["size"], spec["padding"]
            shape = (spec["filters"], output_size(shape[1], k, stride, p), output_size(shape[2], k, stride, p))
        elif kind == "maxpool":
            size, stride = num("size", 1), num("stride", 1)
            spec = dict(type=kind, size=size, stride=stride)
            ours = (output_size(shape[1], size, stride), output_size(shape[2], size, stride))
            # darknet pads by size − 1 (2016 on: (h − 1)//stride + 1 before that); the sizes agree,
            # and so do the windows (they start at 0), only when size = stride on even maps.
            theirs = ((shape[1] - 1) // stride + 1, (shape[2] - 1) // stride + 1)
            if "padding" in s or ours != theirs or size != stride:
                raise DarknetError(f"{path}: [maxpool] (layer {index}) on a {shape[1]}x{shape[2]} map pads its "
                                   f"border in darknet; minidet's MaxPool2d does not (only size = stride on even "
                                   f"maps is imported)")
            shape = (shape[0],) + ours
        elif kind == "connected":
            if num("batch_normalize", 0):
                raise DarknetError(f"{path}: [connected] (layer {index}) with batch_normalize is not imported")
            spec = dict(type=kind, output=num("output", 1), activation=s.get("activation", "logistic"))
            shape = (spec["output"],)
        elif kind == "dropout":
            spec = dict(type=kind, probability=num("probability", 0.5, float))
        else:
            spec = dict(type=kind, classes=num("classes", 1), coords=num("coords", 1), side=num("side", 7),
                        num=num("num", 1), softmax=num("softmax", 0), sqrt=num("sqrt", 0))
            if spec["coords"] != 4 or spec["softmax"] or not spec["sqrt"]:
                raise DarknetError(f"{path}: [detection] must have coords=4, softmax=0, sqrt=1 (YOLO v1's "
                                   f"output), got coords={spec['coords']}, softmax={spec['softmax']}, "
                                   f"sqrt={spec['sqrt']}")
            S, B, C = spec["side"], spec["num"], spec["classes"]
            if not specs or specs[-1]["type"] != "connected" or specs[-1]["output"] != S * S * (5 * B + C):
                raise DarknetError(f"{path}: [detection] must follow a [connected] layer of output "
                                   f"side·side·(5·num + classes) = {S * S * (5 * B + C)}")
        if spec.get("activation", "linear") not in ("leaky", "linear"):
            raise DarknetError(f"{path}: layer {index} ([{kind}]) has activation={spec['activation']}; "
                               f"minidet imports leaky and linear")
        specs.append(spec)
    if not specs or specs[-1]["type"] != "detection":
        raise DarknetError(f"{path}: the last layer must be [detection] (a YOLO v1 network)")
    det = specs[-1]
    return specs, height, det["side"], det["num"], det["classes"]


def darknet_model(layers, input_size: int, S: int, B: int, C: int, seed: int = 0) -> YoloModel:
    """A YoloModel from `layer_specs` dicts: (N, 3, input_size, input_size) → (N, S, S, 5B + C).

    convolutional → Conv2d (b = 0 when batch_normalize) [+ BatchNorm2d] [+ LeakyReLU(0.1)];
    maxpool → MaxPool2d; connected → [Flatten, the first time] Linear [+ LeakyReLU(0.1)];
    dropout → Dropout; detection → Reshape(S, S, 5B + C) (the weights are in minidet's layout).
    """
    rng = np.random.default_rng(seed)
    out, c, flat, features, trunk = [], 3, False, None, None
    side = input_size
    for spec in layers:
        kind = spec["type"]
        if kind == "convolutional":
            out.append(Conv2d(c, spec["filters"], spec["size"], spec["stride"], spec["padding"], rng=rng))
            c = spec["filters"]
            side = (side + 2 * spec["padding"] - spec["size"]) // spec["stride"] + 1
            if spec["batch_normalize"]:
                out.append(BatchNorm2d(c))
        elif kind == "maxpool":
            out.append(MaxPool2d(spec["size"], spec["stride"]))
            side = (side - spec["size"]) // spec["stride"] + 1
        elif kind == "connected":
            if not flat:
                trunk = len(out)
                out.append(Flatten())
                flat, features = True, c * side * side
            out.append(Linear(features, spec["output"], rng=rng))
            features = spec["output"]
        elif kind == "dropout":
            out.append(Dropout(spec["probability"], seed=seed))
        elif kind == "detection":
            out.append(Reshape(S, S, 5 * B + C))
        if spec.get("activation") == "leaky":
            out.append(LeakyReLU(0.1))
    arch = {"name": "darknet", "kwargs": dict(layers=layers, input_size=input_size, S=S, B=B, C=C, seed=seed)}
    return YoloModel(out, arch, input_size, S, B, C, trunk)


def detection_permutation(S: int, B: int, C: int) -> np.ndarray:
    """perm (S·S·(5B + C),) int64: minidet's output k is darknet's output perm[k]."""
    perm = np.empty((S * S, 5 * B + C), dtype=np.int64)
    cells = np.arange(S * S)
    for b in range(B):
        for coord in range(4):
            perm[:, 5 * b + coord] = S * S * (C + B) + (cells * B + b) * 4 + coord
        perm[:, 5 * b + 4] = S * S * C + cells * B + b
    for j in range(C):
        perm[:, 5 * B + j] = cells * C + j
    return perm.reshape(-1)


def _header(data: bytes, path):
    """(header bytes, transpose) from the start of a weights file."""
    if len(data) < 16:
        raise DarknetError(f"{path}: {len(data)} bytes, too short for a darknet weights header")
    major, minor, _ = np.frombuffer(data, "<i4", 3)
    wide_seen = major * 10 + minor >= 2 and major < 1000 and minor < 1000
    return (20 if wide_seen else 16), bool(major > 1000 or minor > 1000)


def _arrays_per_layer(model):
    """[(layer kind, [(params dict, key, shape), ...] in file order)] of the model's weights."""
    order, layers = [], model.layers
    for i, layer in enumerate(layers):
        if isinstance(layer, Conv2d):
            bn = layers[i + 1] if i + 1 < len(layers) and isinstance(layers[i + 1], BatchNorm2d) else None
            if bn is None:
                entries = [(layer.params, "b"), (layer.params, "W")]
            else:
                entries = [(bn.params, "beta"), (bn.params, "gamma"), (bn.buffers, "running_mean"),
                           (bn.buffers, "running_var"), (layer.params, "W")]
            order.append((f"layer {i} (Conv2d)", entries))
        elif isinstance(layer, Linear):
            order.append((f"layer {i} (Linear)", [(layer.params, "b"), (layer.params, "W")]))
    return order


def import_darknet(cfg_path, weights_path) -> YoloModel:
    """The network of a darknet cfg with the weights of a darknet `.weights` file.

    Raises DarknetError naming the file: an unsupported or malformed cfg, a weights file
    whose size does not match the cfg (darknet itself would read garbage or stop short).
    """
    net, sections = read_cfg(cfg_path)
    specs, size, S, B, C = layer_specs(net, sections, cfg_path)
    model = darknet_model(specs, size, S, B, C)
    try:
        data = Path(weights_path).read_bytes()
    except FileNotFoundError:
        raise DarknetError(f"{weights_path}: weights file not found") from None
    except OSError as e:
        raise DarknetError(f"{weights_path}: cannot read the weights ({e})") from None
    offset, transpose = _header(data, weights_path)
    plan = _arrays_per_layer(model)
    floats = sum(int(np.prod(store[key].shape)) for _, entries in plan for store, key in entries)
    if len(data) != offset + 4 * floats:
        raise DarknetError(f"{weights_path}: {len(data)} bytes, but {cfg_path} needs {offset + 4 * floats} "
                           f"(a {offset}-byte header and {floats} float32 weights): not the weights of this cfg")
    values = np.frombuffer(data, "<f4", floats, offset)
    at = 0
    for _, entries in plan:
        for store, key in entries:
            shape = store[key].shape
            n = int(np.prod(shape))
            chunk = values[at:at + n]
            at += n
            if key == "W" and len(shape) == 2 and transpose:
                chunk = chunk.reshape(shape[1], shape[0]).T
            store[key] = np.ascontiguousarray(chunk.reshape(shape), dtype=np.float32)
    for layer, nxt in zip(model.layers, model.layers[1:]):
        if isinstance(layer, Conv2d) and isinstance(nxt, BatchNorm2d):
            layer.params["b"] = np.zeros_like(layer.params["b"])
    last = [layer for layer in model.layers if isinstance(layer, Linear)][-1]
    perm = detection_permutation(S, B, C)
    last.params["W"] = np.ascontiguousarray(last.params["W"][perm])
    last.params["b"] = np.ascontiguousarray(last.params["b"][perm])
    return model.eval()


def classes_for(C: int, classes_file=None, cfg="cfg") -> tuple:
    """The class names of an imported network: one a line from `classes_file`, else the 20
    PASCAL VOC classes when C = 20 (darknet's v1 networks are VOC detectors)."""
    from ..data.voc import VOC_CLASSES

    if classes_file is None:
        if C != len(VOC_CLASSES):
            raise DarknetError(f"{cfg}: the network has {C} classes; name them with --classes FILE (one a line)")
        return VOC_CLASSES
    try:
        names = [line.strip() for line in Path(classes_file).read_text(encoding="utf-8").splitlines()]
    except (OSError, UnicodeDecodeError) as e:
        raise DarknetError(f"{classes_file}: cannot read the class names ({e})") from None
    names = [n for n in names if n]
    if len(names) != C:
        raise DarknetError(f"{classes_file}: {len(names)} class names, but {cfg} has {C} classes")
    return tuple(names)


__all__ = ["classes_for", "DarknetError", "read_cfg", "layer_specs", "darknet_model", "detection_permutation",
           "import_darknet"]
