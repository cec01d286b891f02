"""Importing darknet YOLO v1 networks: cfg files, weights files made by a writer that
follows darknet's format (its parser.c `save_weights`: header, then per layer biases,
[scales, rolling mean, rolling variance], weights), an independent NumPy forward pass of
the raw darknet arrays, and the detection layer decoded by darknet's own rules
(detection_layer.c `get_detection_boxes`) against minidet's `decode`."""
from __future__ import annotations

import numpy as np
import pytest

from minidet.boxes import decode
from minidet.cli import main
from minidet.models import fast_yolo, load, load_checkpoint, yolo_v1
from minidet.models.darknet import DarknetError, darknet_model, detection_permutation, import_darknet, layer_specs, read_cfg
from minidet.models.yolo import FAST_YOLO_FILTERS, YOLO_V1_CONVS
from minidet.testing import assert_close


# --- cfg text and a darknet-format writer ------------------------------------------------


def cfg_text(side, layers):
    """A darknet cfg: [net] of `side`, then `layers` as (section, {key: value}) pairs."""
    lines = ["[net]", "# comments and blank lines are skipped", "batch=1", f"height={side}", f"width={side}",
             "channels=3", ""]
    for section, options in layers:
        lines.append(f"[{section}]")
        lines += [f"{k} = {v}" for k, v in options.items()]
        lines.append("")
    return "\n".join(lines)


def conv(filters, size=3, stride=1, bn=0, activation="leaky"):
    return ("convolutional", dict(batch_normalize=bn, filters=filters, size=size, stride=stride, pad=1,
                                  activation=activation))


POOL = ("maxpool", dict(size=2, stride=2))


def detection(S, B, C):
    return ("detection", dict(classes=C, coords=4, rescore=1, side=S, num=B, softmax=0, sqrt=1, jitter=0.2))


def tiny_2016(S=2, B=2, C=3):
    """The shape of 2016's tiny-yolo.cfg, small: batch-normalized convolutions, one connected layer."""
    return cfg_text(16, [conv(4, bn=1), POOL, conv(8, bn=1), POOL, conv(6, bn=1),
                         ("connected", dict(output=S * S * (5 * B + C), activation="linear")), detection(S, B, C)])


def tiny_2015(S=2, B=2, C=3):
    """The shape of 2015's yolo-tiny.cfg, small: plain convolutions, connected linear → leaky → dropout → out."""
    return cfg_text(16, [conv(4), POOL, conv(8), POOL, conv(6),
                         ("connected", dict(output=10, activation="linear")),
                         ("connected", dict(output=12, activation="leaky")), ("dropout", dict(probability=0.5)),
                         ("connected", dict(output=S * S * (5 * B + C), activation="linear")), detection(S, B, C)])


def raw_arrays(cfg_path, seed=0):
    """Random darknet arrays for every layer of the cfg, in darknet's order and layouts:
    [("conv", dict(biases, scales?, mean?, var?, weights (n, c, k, k), ...)), ("connected", ...)]."""
    net, sections = read_cfg(cfg_path)
    specs, side, S, B, C = layer_specs(net, sections, cfg_path)
    rng = np.random.default_rng(seed)
    c, h, flat, out = 3, side, None, []
    for spec in specs:
        if spec["type"] == "convolutional":
            n, k = spec["filters"], spec["size"]
            layer = dict(spec=spec, biases=rng.normal(0, 0.1, n),
                         weights=rng.normal(0, 1 / np.sqrt(c * k * k), (n, c, k, k)))
            if spec["batch_normalize"]:
                layer.update(scales=rng.uniform(0.5, 1.5, n), mean=rng.normal(0, 0.3, n), var=rng.uniform(0.5, 2, n))
            out.append(layer)
            c, h = n, (h + 2 * spec["padding"] - k) // spec["stride"] + 1
        elif spec["type"] == "maxpool":
            out.append(dict(spec=spec))
            h //= 2
        elif spec["type"] == "connected":
            inputs = c * h * h if flat is None else flat
            flat = spec["output"]
            out.append(dict(spec=spec, biases=rng.normal(0, 0.1, flat),
                            weights=rng.normal(0, 1 / np.sqrt(inputs), (flat, inputs))))
        else:
            out.append(dict(spec=spec))
    return out, (S, B, C)


def write_weights(path, layers, major=0, minor=2, seen=12345):
    """A .weights file as darknet's save_weights writes it: int32 major, minor, revision;
    seen (uint64 from version 0.2 on, int32 before); per convolution biases, [scales,
    rolling mean, rolling variance,] weights; per connected layer biases, weights
    (out, in) — or (in, out) when major or minor > 1000 (the transposed format)."""
    chunks = [np.array([major, minor, 0], "<i4").tobytes()]
    wide = major * 10 + minor >= 2 and major < 1000 and minor < 1000
    chunks.append(np.array([seen], "<u8" if wide else "<i4").tobytes())
    for layer in layers:
        kind = layer["spec"]["type"]
        if kind == "convolutional":
            parts = [layer["biases"]]
            if layer["spec"]["batch_normalize"]:
                parts += [layer["scales"], layer["mean"], layer["var"]]
            parts.append(layer["weights"])
        elif kind == "connected":
            w = layer["weights"].T if (major > 1000 or minor > 1000) else layer["weights"]
            parts = [layer["biases"], w]
        else:
            continue
        chunks += [np.ascontiguousarray(p, "<f4").tobytes() for p in parts]
    path.write_bytes(b"".join(chunks))
    return path


def darknet_forward(layers, image):
    """darknet's forward pass of one image (3, H, W), written from its layer sources with
    plain loops over the kernel: conv (cross-correlation, zero padding), batch norm on the
    rolling statistics (divided by sqrt(var + 1e-5)), scale, + biases, leaky 0.1;
    2×2 max-pool; connected = W · input + biases on the CHW-flattened map. Returns the
    detection layer's input, in darknet's order (classes, confidences, boxes)."""
    x = image.astype(np.float64)
    for layer in layers:
        spec = layer["spec"]
        if spec["type"] == "convolutional":
            w, k, s, p = layer["weights"], spec["size"], spec["stride"], spec["padding"]
            xp = np.pad(x, ((0, 0), (p, p), (p, p)))
            ho = (xp.shape[1] - k) // s + 1
            y = np.zeros((w.shape[0], ho, ho))
            for i in range(k):
                for j in range(k):
                    patch = xp[:, i:i + s * ho:s, j:j + s * ho:s]
                    y += np.einsum("nc,chw->nhw", w[:, :, i, j], patch)
            if spec["batch_normalize"]:
                y = (y - layer["mean"][:, None, None]) / np.sqrt(layer["var"][:, None, None] + 1e-5)
                y = y * layer["scales"][:, None, None]
            x = y + layer["biases"][:, None, None]
        elif spec["type"] == "maxpool":
            x = x.reshape(x.shape[0], x.shape[1] // 2, 2, x.shape[2] // 2, 2).max(axis=(2, 4))
        elif spec["type"] == "connected":
            x = layer["weights"] @ x.reshape(-1) + layer["biases"]
        if spec.get("activation") == "leaky":
            x = np.where(x > 0, x, 0.1 * x)
    return x


def darknet_detections(output, S, B, C, thresh):
    """darknet's get_detection_boxes on one image's detection output (normalized units):
    box (i·B + n) of cell i (row i // S, column i % S): centre ((out[0] + col) / S,
    (out[1] + row) / S), size (out[2]², out[3]²) (sqrt=1); prob[j] = confidence · class j,
    kept when > thresh. Returns {(cell, n, j): (x1, y1, x2, y2, prob)}."""
    found = {}
    for i in range(S * S):
        row, col = i // S, i % S
        for n in range(B):
            scale = output[S * S * C + i * B + n]
            b = output[S * S * (C + B) + (i * B + n) * 4:][:4]
            x, y, w, h = (b[0] + col) / S, (b[1] + row) / S, b[2] ** 2, b[3] ** 2
            for j in range(C):
                prob = scale * output[i * C + j]
                if prob > thresh:
                    found[(i, n, j)] = (x - w / 2, y - h / 2, x + w / 2, y + h / 2, prob)
    return found


# --- tests -------------------------------------------------------------------------------


@pytest.mark.parametrize("cfg_maker", [tiny_2015, tiny_2016], ids=["2015-no-bn", "2016-bn"])
@pytest.mark.parametrize("version", [(0, 1), (0, 2), (1001, 0)], ids=["v0.1-int-seen", "v0.2-uint64-seen",
                                                                         "transposed"])
def test_imported_network_computes_darknets_output_in_minidets_layout(tmp_path, cfg_maker, version):
    cfg = tmp_path / "net.cfg"
    cfg.write_text(cfg_maker())
    layers, (S, B, C) = raw_arrays(cfg)
    weights = write_weights(tmp_path / "net.weights", layers, *version)
    model = import_darknet(cfg, weights)
    assert not model.training
    image = np.random.default_rng(1).random((3, 16, 16)).astype(np.float32)
    expected = darknet_forward(layers, image)
    grid = model.forward(image[None])
    assert grid.shape == (1, S, S, 5 * B + C)
    assert_close(grid.reshape(-1), expected[detection_permutation(S, B, C)], rtol=1e-4, atol=1e-5)


def test_permutation_puts_each_cell_in_minidets_order():
    S, B, C = 2, 2, 3
    perm = detection_permutation(S, B, C).reshape(S * S, 5 * B + C)
    assert sorted(perm.reshape(-1).tolist()) == list(range(S * S * (5 * B + C)))
    cell = 3  # row 1, column 1
    assert perm[cell, 0:4].tolist() == [S * S * (C + B) + (cell * B) * 4 + k for k in range(4)]      # box 0
    assert perm[cell, 4] == S * S * C + cell * B                                                     # conf 0
    assert perm[cell, 5:9].tolist() == [S * S * (C + B) + (cell * B + 1) * 4 + k for k in range(4)]  # box 1
    assert perm[cell, 9] == S * S * C + cell * B + 1                                                 # conf 1
    assert perm[cell, 10:].tolist() == [cell * C + j for j in range(C)]                              # classes


def test_decoded_boxes_are_darknets(tmp_path):
    """A network whose last layer outputs a fixed darknet-order vector (zero weights, biases =
    the vector): minidet's decode of the imported model gives darknet's boxes and scores."""
    S, B, C, thresh = 3, 2, 4, 0.2
    cfg = tmp_path / "net.cfg"
    cfg.write_text(cfg_text(12, [conv(4), POOL, ("connected", dict(output=S * S * (5 * B + C), activation="linear")),
                                 detection(S, B, C)]))
    layers, _ = raw_arrays(cfg)
    rng = np.random.default_rng(2)
    out = np.concatenate([rng.random(S * S * C), rng.random(S * S * B),          # class probs, confidences
                          np.stack([rng.uniform(0.05, 0.95, S * S * B), rng.uniform(0.05, 0.95, S * S * B),
                                    rng.uniform(0.1, 0.4, S * S * B), rng.uniform(0.1, 0.4, S * S * B)],
                                   axis=1).reshape(-1)])                          # boxes x, y, sqrt w, sqrt h
    layers[-2]["weights"][:] = 0
    layers[-2]["biases"] = out
    model = import_darknet(cfg, write_weights(tmp_path / "net.weights", layers))
    grid = model.forward(np.zeros((1, 3, 12, 12), np.float32))
    boxes, scores, labels = decode(grid, S, B, C, score_threshold=thresh, iou_threshold=1.0, max_detections=10_000)[0]
    theirs = darknet_detections(out.astype(np.float32).astype(np.float64), S, B, C, thresh)
    assert len(theirs) > 20 and len(scores) == len(theirs)
    expected = sorted(theirs.values(), key=lambda t: -t[4])
    ours = sorted(zip(boxes.tolist(), scores.tolist(), labels.tolist()), key=lambda t: -t[1])
    for (box, score, _), ref in zip(ours, expected):
        assert_close(score, ref[4], rtol=1e-6)
        assert_close(box, np.clip(ref[:4], 0, 1), rtol=1e-5, atol=1e-6)  # minidet clips to the image
    by_label = sorted((j, p[4]) for (_, _, j), p in theirs.items())
    ours_by_label = sorted(zip(labels.tolist(), scores.tolist()))
    assert [j for j, _ in ours_by_label] == [j for j, _ in by_label]
    assert_close([s for _, s in ours_by_label], [s for _, s in by_label], rtol=1e-6)


def cfg_of_fast_yolo():
    """2015's yolo-tiny.cfg as described in the paper and minidet's fast_yolo docstring."""
    layers = []
    for i, f in enumerate(FAST_YOLO_FILTERS):
        layers.append(conv(f))
        if i < 6:
            layers.append(POOL)
    layers += [("connected", dict(output=256, activation="linear")), ("connected", dict(output=4096, activation="leaky")),
               ("dropout", dict(probability=0.5)), ("connected", dict(output=1470, activation="linear")),
               detection(7, 2, 20)]
    return cfg_text(448, layers)


def cfg_of_yolo_v1():
    """2015's yolo.cfg: the paper's 24 convolutions, connected 4096 (leaky), dropout, connected 1470."""
    layers = [POOL if spec == "M" else conv(spec[1], spec[0], spec[2]) for spec in YOLO_V1_CONVS]
    layers += [("connected", dict(output=4096, activation="leaky")), ("dropout", dict(probability=0.5)),
               ("connected", dict(output=1470, activation="linear")), detection(7, 2, 20)]
    return cfg_text(448, layers)


@pytest.mark.parametrize("text, reference", [(cfg_of_fast_yolo, fast_yolo), (cfg_of_yolo_v1, yolo_v1)],
                         ids=["yolo-tiny-2015", "yolo-2015"])
def test_v1_cfgs_build_the_papers_networks(tmp_path, monkeypatch, text, reference):
    # Only the structure matters: skip drawing the 270 M weights of the full networks.
    def no_init(shape, fan_in, rng=None, dtype=np.float32):
        return np.zeros(shape, dtype)

    monkeypatch.setattr("minidet.layers.conv.he_normal", no_init)
    monkeypatch.setattr("minidet.layers.linear.he_normal", no_init)
    cfg = tmp_path / "v1.cfg"
    cfg.write_text(text())
    specs, size, S, B, C = layer_specs(*read_cfg(cfg), cfg)
    ours = darknet_model(specs, size, S, B, C)
    theirs = reference()
    assert [type(l).__name__ for l in ours.layers] == [type(l).__name__ for l in theirs.layers]
    assert [(n, p[k].shape) for n, p, _, k in ours.named_parameters()] == \
           [(n, p[k].shape) for n, p, _, k in theirs.named_parameters()]


def test_checkpoint_of_an_imported_network_reloads_and_detects(tmp_path, capsys):
    cfg = tmp_path / "net.cfg"
    cfg.write_text(tiny_2016())
    layers, _ = raw_arrays(cfg)
    weights = write_weights(tmp_path / "net.weights", layers)
    (tmp_path / "names.txt").write_text("cat\ndog\nbird\n")
    out = tmp_path / "imported.npz"
    main(["import-darknet", str(cfg), str(weights), str(out), "--classes", str(tmp_path / "names.txt")])
    assert f"minidet detect --weights {out}" in capsys.readouterr().out
    model, meta = load_checkpoint(out)
    assert meta["classes"] == ["cat", "dog", "bird"]
    direct = import_darknet(cfg, weights)
    x = np.random.default_rng(3).random((2, 3, 16, 16)).astype(np.float32)
    assert np.array_equal(load(out).eval().forward(x), direct.forward(x))
    from PIL import Image

    Image.fromarray((np.random.default_rng(4).random((20, 24, 3)) * 255).astype(np.uint8)).save(tmp_path / "a.jpg")
    main(["detect", "--weights", str(out), str(tmp_path / "a.jpg"), "--out", str(tmp_path / "dets")])
    assert (tmp_path / "dets" / "a_detections.png").is_file()


def run_cli(capsys, *argv):
    with pytest.raises(SystemExit) as e:
        main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert e.value.code == 2 and len(err) == 1 and err[0].startswith("minidet: error: "), err
    return err[0]


def test_weights_of_another_size_is_a_one_line_error(tmp_path, capsys):
    cfg = tmp_path / "net.cfg"
    cfg.write_text(tiny_2016())
    layers, _ = raw_arrays(cfg)
    weights = write_weights(tmp_path / "net.weights", layers)
    weights.write_bytes(weights.read_bytes()[:-8])
    line = run_cli(capsys, "import-darknet", cfg, weights, tmp_path / "out.npz", "--classes", cfg)
    assert str(weights) in line and str(cfg) in line and "bytes" in line
    assert not (tmp_path / "out.npz").exists()
    weights.write_bytes(weights.read_bytes() + b"\0" * 12)  # longer than the cfg needs
    assert "bytes" in run_cli(capsys, "import-darknet", cfg, weights, tmp_path / "out.npz")


@pytest.mark.parametrize("text, message", [
    (cfg_text(16, [conv(4), ("local", dict(size=3, filters=4)), detection(2, 2, 3)]), r"\[local\]"),
    (cfg_text(16, [conv(4, activation="logistic"), ("connected", dict(output=52)), detection(2, 2, 3)]), "logistic"),
    (cfg_text(16, [conv(4), ("connected", dict(output=50, activation="linear")), detection(2, 2, 3)]), "52"),
    (cfg_text(16, [conv(4)]), "last layer must be"),
    ("height=3\n", "line 1"),
    (cfg_text(15, [conv(4), POOL, ("connected", dict(output=52, activation="linear")), detection(2, 2, 3)]),
     "maxpool"),
])
def test_unsupported_cfgs_are_one_line_errors_naming_the_file(tmp_path, capsys, text, message):
    cfg = tmp_path / "bad.cfg"
    cfg.write_text(text)
    (tmp_path / "w").write_bytes(b"\0" * 20)
    line = run_cli(capsys, "import-darknet", cfg, tmp_path / "w", tmp_path / "out.npz")
    assert str(cfg) in line
    import re

    assert re.search(message, line), line


def test_existing_output_is_not_overwritten_without_force(tmp_path, capsys):
    cfg = tmp_path / "net.cfg"
    cfg.write_text(tiny_2016(C=20))
    layers, _ = raw_arrays(cfg)
    weights = write_weights(tmp_path / "net.weights", layers)
    out = tmp_path / "out.npz"
    out.write_bytes(b"mine")
    assert "--force" in run_cli(capsys, "import-darknet", cfg, weights, out)
    assert out.read_bytes() == b"mine"
    main(["import-darknet", str(cfg), str(weights), str(out), "--force"])  # C = 20: VOC's names
    assert load_checkpoint(out)[1]["classes"][0] == "aeroplane"


def test_darknet_error_is_a_value_error():
    assert issubclass(DarknetError, ValueError)
