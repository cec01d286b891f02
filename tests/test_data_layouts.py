"""COCO and YOLO layouts: readers with VOC's rigour on bad input, layout detection, and
`minidet data convert`: the same dataset in the three layouts has the same classes, the
same float32 boxes, and evaluates to the same mAP with the same checkpoint."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from PIL import Image

from minidet.data import COCODataset, VOCDataset, YOLODataset, detect_layout, open_dataset
from minidet.data.convert import coco_bbox, convert, voc_corners, yolo_line

from helpers import run

pytestmark = pytest.mark.usefixtures("isolated_cache")


def one_line_error(capsys, *argv):
    code, _, err = run(capsys, *argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("minidet: error: "), err
    return lines[0]


def image(path, w=100, h=200):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((h, w, 3), 128, np.uint8)).save(path)
    return path


# --- COCO --------------------------------------------------------------------------------


def coco_root(tmp_path, doc=None, folder="images/train"):
    root = tmp_path / "coco"
    image(root / folder / "a.jpg")
    image(root / folder / "b.png", 50, 50)
    doc = doc if doc is not None else coco_doc()
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "instances_train.json").write_text(json.dumps(doc))
    return root


def coco_doc():
    return {"images": [{"id": 7, "file_name": "a.jpg", "width": 100, "height": 200},
                       {"id": 9, "file_name": "b.png", "width": 50, "height": 50}],
            "annotations": [{"id": 1, "image_id": 7, "category_id": 18, "bbox": [10, 20, 30, 40]},
                            {"id": 2, "image_id": 7, "category_id": 3, "bbox": [0, 0, 100, 200], "iscrowd": 1},
                            {"id": 3, "image_id": 9, "category_id": 3, "bbox": [40, 40, 20, 5]}],
            "categories": [{"id": 18, "name": "dog"}, {"id": 3, "name": "car"}]}


@pytest.mark.parametrize("folder", ["images/train", "train"])
def test_coco_reader(tmp_path, folder):
    root = coco_root(tmp_path, folder=folder)
    assert detect_layout(root) == "coco"
    with pytest.warns(UserWarning, match="clipped 1 boxes"):
        d = open_dataset(root, "train")
    assert isinstance(d, COCODataset) and d.classes == ("car", "dog")  # by ascending category id
    assert d.names == ["a", "b"] and len(d) == 2
    a = d.annotations[0]
    np.testing.assert_array_equal(a.boxes, np.array([[0.1, 0.1, 0.4, 0.3], [0, 0, 1, 1]], np.float32))
    assert a.labels.tolist() == [1, 0] and a.difficult.tolist() == [False, True]
    np.testing.assert_array_equal(d.annotations[1].boxes, np.array([[0.8, 0.8, 1.0, 0.9]], np.float32))
    assert d[1].image.shape == (50, 50, 3) and d.clipped_boxes == 1


def break_coco(kind):
    doc = coco_doc()
    if kind == "missing key":
        del doc["categories"]
    elif kind == "negative size":
        doc["annotations"][0]["bbox"] = [10, 20, -3, 40]
    elif kind == "unknown category":
        doc["annotations"][0]["category_id"] = 5
    elif kind == "unknown image":
        doc["annotations"][0]["image_id"] = 8
    elif kind == "no bbox":
        del doc["annotations"][0]["bbox"]
    elif kind == "bad bbox":
        doc["annotations"][0]["bbox"] = [1, 2, 3]
    return doc


@pytest.mark.parametrize("kind, message", [("missing key", "no 'categories'"), ("negative size", "negative size"),
                                           ("unknown category", "category_id 5, not in 'categories'"),
                                           ("unknown image", "image id 8, not in 'images'"), ("no bbox", "no 'bbox'"),
                                           ("bad bbox", "bbox must be [x, y, w, h]")])
def test_bad_coco_is_one_line_naming_the_file(tmp_path, capsys, tiny_run, kind, message):
    root = coco_root(tmp_path, break_coco(kind))
    line = one_line_error(capsys, "eval", "--weights", tiny_run[0] / "best.npz", "--data", root, "--split", "train")
    assert "instances_train.json" in line and message in line.replace('"', "'"), line


def test_coco_invalid_json_and_missing_image(tmp_path):
    root = coco_root(tmp_path)
    (root / "images" / "train" / "b.png").unlink()
    with pytest.raises(Exception, match=r"b\.png: image file not found"):
        COCODataset(root, "train")
    (root / "annotations" / "instances_train.json").write_text("{not json")
    with pytest.raises(Exception, match="instances_train.json: cannot read"):
        COCODataset(root, "train")


# --- YOLO --------------------------------------------------------------------------------


def yolo_root(tmp_path, yaml_text="names: [cat, dog, bird]\ntrain: images/train\n", labels=None):
    root = tmp_path / "yolo"
    image(root / "images" / "train" / "a.jpg")
    image(root / "images" / "train" / "sub" / "b.jpg", 40, 40)
    image(root / "images" / "train" / "c.png", 40, 40)      # no label file: no objects
    (root / "data.yaml").write_text(yaml_text)
    labels = labels if labels is not None else {"a": "1 0.25 0.5 0.3 0.2\n\n2 0.5 0.5 1 1\n", "sub/b": "0 0.5 0.5 0.5 0.5"}
    for name, text in labels.items():
        (root / "labels" / "train" / f"{name}.txt").parent.mkdir(parents=True, exist_ok=True)
        (root / "labels" / "train" / f"{name}.txt").write_text(text)
    return root


def test_yolo_reader(tmp_path):
    root = yolo_root(tmp_path)
    assert detect_layout(root) == "yolo"
    d = open_dataset(root, "train")
    assert isinstance(d, YOLODataset) and d.classes == ("cat", "dog", "bird")
    assert d.names == ["images/train/a", "images/train/c", "images/train/sub/b"]  # sorted paths
    np.testing.assert_array_equal(d.annotations[0].boxes, np.array([[0.1, 0.4, 0.4, 0.6], [0, 0, 1, 1]], np.float32))
    assert d.annotations[0].labels.tolist() == [1, 2]
    assert len(d.annotations[1].boxes) == 0 and d.annotations[1].boxes.shape == (0, 4)
    assert (d.annotations[0].width, d.annotations[0].height) == (100, 200)


def test_yolo_names_as_a_mapping_and_list_files(tmp_path):
    root = yolo_root(tmp_path, "names: {0: cat, 1: dog, 2: bird}\ntrain: [list.txt]\n")
    (root / "list.txt").write_text("./images/train/sub/b.jpg\nimages/train/a.jpg\n")
    d = YOLODataset(root, "train")
    assert d.classes == ("cat", "dog", "bird") and d.names == ["images/train/sub/b", "images/train/a"]


def test_label_file_without_an_image_is_reported_not_fatal(tmp_path):
    root = yolo_root(tmp_path)
    (root / "labels" / "train" / "ghost.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    with pytest.warns(UserWarning, match=r"1 label files have no image, e\.g\. .*ghost\.txt"):
        d = YOLODataset(root, "train")
    assert len(d) == 3 and [p.name for p in d.orphan_labels] == ["ghost.txt"]


@pytest.mark.parametrize("line, message", [
    ("1 0.5 0.5 0.2", "expected 5 fields"), ("1 0.5 0.5 0.2 0.2 0.3 0.4", "expected 5 fields"),
    ("1 0.5 1.5 0.2 0.2", r"normalized to \[0, 1\]"), ("1 -0.1 0.5 0.2 0.2", r"normalized to \[0, 1\]"),
    ("3 0.5 0.5 0.2 0.2", "class 3 is beyond the 3 names"), ("x 0.5 0.5 0.2 0.2", "not a class index"),
])
def test_bad_yolo_label_is_one_line_naming_the_file_and_line(tmp_path, capsys, tiny_run, line, message):
    root = yolo_root(tmp_path, labels={"a": "0 0.5 0.5 0.1 0.1\n" + line + "\n"})
    err = one_line_error(capsys, "eval", "--weights", tiny_run[0] / "best.npz", "--data", root, "--split", "train")
    assert "a.txt, line 2" in err and __import__("re").search(message, err), err


@pytest.mark.parametrize("text, message", [("train: images/train\n", "no 'names'"),
                                           ("names: [a]\n", "no 'val' entry"),
                                           ("names: [a]\nval: nowhere\n", "neither an image folder"),
                                           ("names: [a, a]\nval: images/train\n", "appear twice"),
                                           ("names: [a\nval: x", "cannot read")])
def test_bad_data_yaml(tmp_path, text, message):
    root = yolo_root(tmp_path, text)
    with pytest.raises(Exception, match=message) as e:
        YOLODataset(root, "val")
    assert "data.yaml" in str(e.value)


# --- conversion --------------------------------------------------------------------------


@pytest.mark.parametrize("box", [[0.0, 0.0, 1.0, 1.0], [0.1234567, 0.3, 0.62, 0.9999], [1 / 3, 2 / 7, 0.5, 0.5 + 1e-6]])
def test_written_numbers_read_back_to_the_same_float32_box(box):
    box = np.array(box, np.float32)
    W, H = 333, 217
    xmin, ymin, xmax, ymax = (float(v) for v in voc_corners(box, W, H))
    assert np.array_equal(np.array([(xmin - 1) / W, (ymin - 1) / H, xmax / W, ymax / H], np.float32), box)
    x, y, w, h = coco_bbox(box, W, H)
    assert np.array_equal(np.array([x / W, y / H, (x + w) / W, (y + h) / H], np.float32), box)
    _, cx, cy, bw, bh = (float(v) for v in yolo_line(0, box).split())
    assert np.array_equal(np.array([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], np.float32), box)


def test_voc_born_boxes_stay_integers():
    box = np.array([(48 - 1) / 333, (10 - 1) / 217, 120 / 333, 200 / 217], np.float32)
    assert voc_corners(box, 333, 217) == ["48", "10", "120", "200"]
    assert coco_bbox(box, 333, 217) == [47.0, 9.0, 73.0, 191.0]


def same_dataset(a, b):
    assert a.classes == b.classes and len(a) == len(b)
    for x, y in zip(a.annotations, b.annotations):
        assert (x.width, x.height) == (y.width, y.height)
        assert np.array_equal(x.boxes, y.boxes) and x.boxes.dtype == y.boxes.dtype == np.float32
        assert np.array_equal(x.labels, y.labels) and np.array_equal(x.difficult, y.difficult)
    for i in (0, len(a) - 1):
        assert np.array_equal(a.image(i), b.image(i))


@pytest.fixture(scope="module")
def three_layouts(tiny_voc, tmp_path_factory):
    base = tmp_path_factory.mktemp("layouts")
    coco = base / "coco"
    convert(tiny_voc, coco, "coco", log=lambda *_: None)
    yolo = base / "yolo"
    convert(coco, yolo, "yolo", log=lambda *_: None)          # COCO → YOLO
    voc = base / "voc"
    convert(yolo, voc, "voc", log=lambda *_: None)            # and back to VOC
    return {"voc": tiny_voc, "coco": coco, "yolo": yolo, "voc again": voc}


def test_converted_layouts_are_detected_and_hold_the_same_dataset(three_layouts):
    expected = {"voc": "voc", "coco": "coco", "yolo": "yolo", "voc again": "voc"}
    for name, root in three_layouts.items():
        assert detect_layout(root) == expected[name]
    for split in ("train", "val", "test", "trainval"):
        source = VOCDataset(three_layouts["voc"], split)
        for name in ("coco", "yolo", "voc again"):
            same_dataset(source, open_dataset(three_layouts[name], split))


def test_same_map_with_the_same_checkpoint_in_every_layout(three_layouts, tiny_run, tmp_path, capsys):
    results = {}
    for name, root in three_layouts.items():
        out = tmp_path / f"{name}.json"
        code, _, err = run(capsys, "eval", "--weights", tiny_run[0] / "best.npz", "--data", root,
                           "--split", "train", "--json", out, "--device", "cpu")
        assert code == 0, err
        results[name] = json.loads(out.read_text())
    assert results["voc"]["AP"], "the checkpoint detects nothing: the comparison would be empty"
    for name in ("coco", "yolo", "voc again"):
        assert results[name] == results["voc"], name   # every AP and the mAP, to the last bit


def test_difficult_objects_survive_coco_and_are_noted_for_yolo(tmp_path):
    root = coco_root(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        source = COCODataset(root, "train")
        notes = []
        convert(root, tmp_path / "voc", "voc", log=notes.append)
        assert "re-encoded" in notes[0]  # b.png into JPEGImages
        same = VOCDataset(tmp_path / "voc", "train")
        assert same.annotations[0].difficult.tolist() == [False, True]
        assert np.array_equal(same.annotations[0].boxes, source.annotations[0].boxes)
        notes = []
        convert(root, tmp_path / "yolo", "yolo", log=notes.append)
    assert notes == ["note: 1 difficult objects written as ordinary ones (YOLO labels have no difficult flag)"]


def test_convert_never_overwrites_without_force_and_leaves_no_temporary(tmp_path, capsys, tiny_voc):
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "mine.txt").write_text("keep")
    line = one_line_error(capsys, "data", "convert", tiny_voc, dst, "--to", "coco")
    assert "--force" in line and (dst / "mine.txt").read_text() == "keep"
    code, out, err = run(capsys, "data", "convert", tiny_voc, dst, "--to", "coco", "--force")
    assert code == 0, err
    assert "train 30 images" in out and not (dst / "mine.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    bad = tmp_path / "bad"
    one_line_error(capsys, "data", "convert", tmp_path / "nowhere", bad, "--to", "yolo")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --- stats and show ----------------------------------------------------------------------


def test_stats_counts_objects_sizes_and_shared_cells(tmp_path, capsys):
    # a: two objects whose centres share cell (3, 1) at S = 7, and a third elsewhere.
    root = yolo_root(tmp_path, labels={"a": "1 0.2 0.5 0.2 0.2\n2 0.21 0.51 0.1 0.1\n0 0.9 0.9 0.1 0.1\n",
                                       "sub/b": "0 0.5 0.5 0.5 0.5"})
    from minidet.data.stats import dataset_stats

    s = dataset_stats(YOLODataset(root, "train"))
    assert (s["images"], s["objects"], s["empty_images"]) == (3, 4, 1)
    assert s["per_class"] == {"cat": 2, "dog": 1, "bird": 1}
    assert s["objects_per_image"] == (4 / 3, 3) and (s["shared_cells"], s["hidden_objects"]) == (1, 1)
    assert s["size_quantiles"][1.0] == pytest.approx(0.5) and s["size_quantiles"][0.0] == pytest.approx(0.1)
    code, out, err = run(capsys, "data", "stats", root)
    assert code == 0, err
    assert "YOLO layout" in out and "train: 3 images, 4 objects" in out and "1 objects (25.0 %)" in out


@pytest.mark.parametrize("augment", [False, True])
def test_show_writes_a_sheet(tmp_path, capsys, tiny_voc, augment):
    out = tmp_path / "sheet.png"
    code, stdout, err = run(capsys, "data", "show", tiny_voc, "--count", "6", "--input-size", "64", "--out", out,
                            *(["--augment"] if augment else []))
    assert code == 0, err
    with Image.open(out) as img:
        assert img.size == (4 * 64, 2 * 64)
    assert ("augmented" in stdout) == augment
