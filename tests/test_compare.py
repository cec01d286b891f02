"""minidet.compare: mAP by object size, model cost, the comparison rows and table."""
import numpy as np

from minidet.compare import SIZE_BANDS, compare, format_table, map_by_size, model_cost
from minidet.data import BatchLoader, VOCDataset
from minidet.layers import Conv2d, Linear
from minidet.models import reduced_fast_yolo, ssd_lite
from minidet.train import TrainConfig, loss_and_targets


def test_map_by_size_counts_each_band_alone():
    # sides 0.1 (< 15 %), 0.2, 0.3 and 0.6 of the image; the detector finds only the two largest
    truths = [(np.array([[0, 0, .1, .1], [.2, .2, .4, .4], [.5, .5, .8, .8], [0, .4, .6, 1]]),
               np.array([0, 0, 1, 1]), np.zeros(4, bool))]
    dets = [(np.array([[.5, .5, .8, .8], [0, .4, .6, 1]]), np.array([.9, .8]), np.array([1, 1]))]
    rows = map_by_size(dets, truths, num_classes=2)
    assert [(lo, hi, n) for lo, hi, n, _ in rows] == [(0.0, 0.15, 1), (0.15, 0.25, 1), (0.25, 0.4, 1),
                                                     (0.4, float("inf"), 1)]
    assert [m for *_, m in rows] == [0.0, 0.0, 1.0, 1.0]


def _conv_flops(layers, shape):
    """Hand count: 2·Ho·Wo·F·C·k² per convolution, walking the shapes (N = 1)."""
    total = 0
    for layer in layers:
        out = layer.output_shape(shape) if hasattr(layer, "output_shape") else shape
        if isinstance(layer, Conv2d):
            total += 2 * out[2] * out[3] * layer.out_channels * layer.in_channels * layer.kernel_size ** 2
        shape = out
    return total, shape


def test_model_cost_counts_convolutions_of_trunk_and_heads():
    yolo = reduced_fast_yolo(56, 0.0625, head="conv")
    assert model_cost(yolo) == {"params": yolo.num_parameters(), "flops": _conv_flops(yolo.layers, (1, 3, 56, 56))[0]}
    ssd = ssd_lite(56, 0.0625, C=20)
    trunk, _ = _conv_flops(ssd.net.trunk, (1, 3, 56, 56))
    heads = sum(2 * f * f * h.layers[0].out_channels * h.layers[0].in_channels * 9
                for f, h in zip((14, 7, 4, 2, 1), ssd.net.heads.values()))
    assert model_cost(ssd) == {"params": ssd.num_parameters(), "flops": trunk + heads}
    assert not any(isinstance(layer, Linear) for layer in ssd.layers)


def test_compare_rows_and_table(tiny_voc):
    models = {}
    for kind, model in (("reduced", reduced_fast_yolo(56, 0.0625, head="conv")), ("ssd", ssd_lite(56, 0.0625))):
        models[kind] = (model, *loss_and_targets(TrainConfig(model=kind), model))
    with BatchLoader(VOCDataset(tiny_voc, "test"), 8, 56, workers=1) as loader, \
            BatchLoader(VOCDataset(tiny_voc, "train"), 4, 56, workers=1) as train_loader:
        rows = compare(models, loader, next(iter(train_loader)), repeats=1)
    assert [r["name"] for r in rows] == ["reduced", "ssd"]
    for r, (model, _, _) in zip(rows, models.values()):
        assert 0 <= r["mAP"] <= 1 and len(r["by_size"]) == len(SIZE_BANDS) - 1
        assert r["params"] == model.num_parameters() and r["flops"] > 0
        assert r["images_per_s"] > 0 and r["train_step_ms"] > 0
    table = format_table(rows).splitlines()
    assert len(table) == 4 and "< 15%" in table[0] and "≥ 40%" in table[0]
    assert table[3].startswith("| ssd | ") and f"{rows[1]['params'] / 1e6:.2f}" in table[3]


def test_compare_detectors_script_on_checkpoints(tmp_path, tiny_voc, capsys):
    import importlib.util
    from dataclasses import asdict
    from pathlib import Path

    from minidet.data import SYNTH_CLASSES
    from minidet.models import save

    paths = {}
    for kind, model in (("reduced", reduced_fast_yolo(56, 0.0625, head="conv")), ("ssd", ssd_lite(56, 0.0625))):
        paths[kind] = tmp_path / f"{kind}.npz"
        config = TrainConfig(model=kind, input_size=56, width=0.0625, head="conv" if kind == "reduced" else None)
        save(model, paths[kind], classes=list(SYNTH_CLASSES), config=asdict(config))
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "compare_detectors.py"
    spec = importlib.util.spec_from_file_location("compare_detectors", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(["--yolo", str(paths["reduced"]), "--ssd", str(paths["ssd"]), "--data", str(tiny_voc),
                 "--repeats", "1"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("test split of") and len(out) == 5
    assert out[3].startswith("| YOLO") and out[4].startswith("| SSD")


def test_two_stage_rows_time_selective_search_every_time(tiny_voc):
    from minidet.models.fast_rcnn_ss import fast_rcnn_ss
    from minidet.models.faster_rcnn import faster_rcnn

    models = {}
    for kind, model in (("faster", faster_rcnn(56, 0.0625, C=20)), ("fast-rcnn", fast_rcnn_ss(56, 0.0625, C=20))):
        models[kind] = (model, *loss_and_targets(TrainConfig(model=kind, input_size=56, width=0.0625), model))
    calls = []
    memo = models["fast-rcnn"][0].proposals
    original = memo.found.clear
    memo.found = type("Counted", (dict,), {"clear": lambda self: (calls.append(1), dict.clear(self))})()
    with BatchLoader(VOCDataset(tiny_voc, "test"), 4, 56, workers=1) as loader, \
            BatchLoader(VOCDataset(tiny_voc, "train"), 4, 56, workers=1) as train_loader:
        rows = compare(models, loader, next(iter(train_loader)), repeats=2)
    assert original is not None and len(calls) == 4   # forgotten before each timed call: 2 inference, 2 steps
    for r, (model, _, _) in zip(rows, models.values()):
        assert r["flops"] is None and r["params"] == model.num_parameters()
        assert r["images_per_s"] > 0 and r["train_step_ms"] > 0
    table = format_table(rows).splitlines()
    assert table[2].startswith("| faster | ") and table[2].endswith(" | – |")
