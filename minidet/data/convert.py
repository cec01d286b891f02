"""`minidet data convert SRC DST --to voc|coco|yolo`: one dataset written in another layout.

Every split of SRC (`layouts.splits_of`) is read with its reader and written to DST in the
target layout, with the same classes in the same order, the same images (copied byte for
byte; a non-JPEG image written to VOC's JPEGImages is re-encoded as JPEG), and boxes
written so that DST's reader gives back exactly the same float32 boxes (each number is the
shortest decimal that reads back to the same box, so VOC-born boxes stay integers):

    voc   JPEGImages/NAME.jpg, Annotations/NAME.xml (1-based inclusive pixel corners),
          ImageSets/Main/SPLIT.txt, classes.txt
    coco  images/SPLIT/FILE, annotations/instances_SPLIT.json (bbox [x, y, w, h] in pixels,
          category ids 1..C in class order, difficult objects as iscrowd)
    yolo  images/SPLIT/FILE, labels/SPLIT/STEM.txt (class cx cy w h), data.yaml whose
          splits are list files SPLIT.txt, so the image order is SRC's

YOLO labels have no "difficult" flag: difficult objects are written as ordinary ones, and
the conversion says how many. DST is written in a temporary folder beside it and renamed
into place when complete; an existing DST is replaced only with force=True.
"""
from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
from PIL import Image

from ..errors import DatasetError
from .layouts import LAYOUTS, open_dataset, splits_of


def _shortest(value: float, reads_back) -> str:
    """The shortest decimal of `value` (an int if it can be) for which `reads_back(text)` holds."""
    candidates = [str(int(round(value)))] + [f"{value:.{k}f}" for k in range(1, 10)] + [repr(float(value))]
    for text in candidates:
        if reads_back(float(text)):
            return text.rstrip("0").rstrip(".") if "." in text else text
    raise AssertionError(f"no decimal reads back to {value!r}")  # repr always does


def _f32(v) -> np.float32:
    return np.float32(v)


def voc_corners(box, W, H):
    """[xmin, ymin, xmax, ymax] strings of VOC's 1-based pixel box for a normalized float32 box."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return [_shortest(x1 * W + 1, lambda t: _f32((t - 1) / W) == _f32(x1)),
            _shortest(y1 * H + 1, lambda t: _f32((t - 1) / H) == _f32(y1)),
            _shortest(x2 * W, lambda t: _f32(t / W) == _f32(x2)),
            _shortest(y2 * H, lambda t: _f32(t / H) == _f32(y2))]


def coco_bbox(box, W, H):
    """COCO's [x, y, w, h] in pixels (floats) for a normalized float32 box."""
    x1, y1, x2, y2 = (float(v) for v in box)
    x = float(_shortest(x1 * W, lambda t: _f32(t / W) == _f32(x1)))
    y = float(_shortest(y1 * H, lambda t: _f32(t / H) == _f32(y1)))
    w = float(_shortest(x2 * W - x, lambda t: _f32((x + t) / W) == _f32(x2)))
    h = float(_shortest(y2 * H - y, lambda t: _f32((y + t) / H) == _f32(y2)))
    return [x, y, w, h]


def yolo_line(label, box) -> str:
    """`class cx cy w h` for a normalized float32 box, reading back to the same corners."""
    x1, y1, x2, y2 = (float(v) for v in box)
    fields = [str(int(label))]
    for lo, hi in ((x1, x2), (y1, y2)):
        c, s = (lo + hi) / 2, hi - lo
        for k in range(6, 18):
            tc, ts = f"{c:.{k}g}", f"{s:.{k}g}"
            fc, fs = float(tc), float(ts)
            if _f32(fc - fs / 2) == _f32(lo) and _f32(fc + fs / 2) == _f32(hi) and 0 <= fc <= 1 and 0 <= fs <= 1:
                break
        fields.append((tc, ts))
    (cx, w), (cy, h) = fields[1], fields[2]
    return f"{fields[0]} {cx} {cy} {w} {h}"


def _voc_xml(name, W, H, annotation, classes) -> str:
    objects = []
    for box, label, difficult, truncated in zip(annotation.boxes, annotation.labels, annotation.difficult,
                                                annotation.truncated):
        xmin, ymin, xmax, ymax = voc_corners(box, W, H)
        objects.append(f"\t<object>\n\t\t<name>{escape(classes[int(label)])}</name>\n"
                       f"\t\t<truncated>{int(truncated)}</truncated>\n\t\t<difficult>{int(difficult)}</difficult>\n"
                       f"\t\t<bndbox>\n\t\t\t<xmin>{xmin}</xmin>\n\t\t\t<ymin>{ymin}</ymin>\n"
                       f"\t\t\t<xmax>{xmax}</xmax>\n\t\t\t<ymax>{ymax}</ymax>\n\t\t</bndbox>\n\t</object>\n")
    return (f"<annotation>\n\t<filename>{escape(name)}.jpg</filename>\n\t<size>\n\t\t<width>{W}</width>\n"
            f"\t\t<height>{H}</height>\n\t\t<depth>3</depth>\n\t</size>\n{''.join(objects)}</annotation>\n")


class _Names:
    """A unique output name per source image file (its stem, or stem_2, ... on a clash)."""

    def __init__(self):
        self.by_file, self.taken = {}, set()

    def __call__(self, file: Path) -> str:
        if file not in self.by_file:
            stem, k = file.stem, 1
            name = stem
            while name in self.taken:
                k += 1
                name = f"{stem}_{k}"
            self.taken.add(name)
            self.by_file[file] = name
        return self.by_file[file]


def _is_jpeg(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(3) == b"\xff\xd8\xff"


def convert(src, dst, to: str, force: bool = False, log=print) -> dict:
    """Write the dataset at `src` to `dst` in layout `to`; returns {split: number of images}."""
    if to not in LAYOUTS:
        raise DatasetError(f"--to must be one of {', '.join(LAYOUTS)}, got {to!r}")
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise DatasetError(f"{src}: dataset directory not found")
    if dst.exists() and not force:
        raise DatasetError(f"{dst} exists; pass --force to replace it")
    splits = splits_of(src)
    if not splits:
        raise DatasetError(f"{src}: no split found to convert")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the reader's notes (clipped boxes...) were given when SRC was used
        datasets = {s: open_dataset(src, s) for s in splits}
    classes = datasets[splits[0]].classes
    for s, d in datasets.items():
        if d.classes != classes:
            raise DatasetError(f"{src}: split {s} has other classes than {splits[0]}")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent))
    counts, notes = {}, {"difficult_lost": 0, "reencoded": 0}
    try:
        WRITERS[to](datasets, classes, tmp, notes)
        counts = {s: len(d) for s, d in datasets.items()}
        if dst.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", suffix=".old", dir=dst.parent))
            dst.rename(old / dst.name)
            tmp.rename(dst)
            shutil.rmtree(old)
        else:
            tmp.rename(dst)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    if notes["difficult_lost"]:
        log(f"note: {notes['difficult_lost']} difficult objects written as ordinary ones (YOLO labels have no "
            f"difficult flag)")
    if notes["reencoded"]:
        log(f"note: {notes['reencoded']} non-JPEG images re-encoded as JPEG for VOC's JPEGImages (pixels change)")
    return counts


def _write_voc(datasets, classes, out, notes):
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (out / sub).mkdir(parents=True)
    names, written = _Names(), set()
    for split, d in datasets.items():
        members = []
        for i, a in enumerate(d.annotations):
            file = Path(d.image_path(i))
            name = names(file)
            members.append(name)
            if name in written:
                continue
            written.add(name)
            if _is_jpeg(file):
                shutil.copyfile(file, out / "JPEGImages" / f"{name}.jpg")
            else:
                Image.fromarray(d.image(i)).save(out / "JPEGImages" / f"{name}.jpg", quality=95)
                notes["reencoded"] += 1
            (out / "Annotations" / f"{name}.xml").write_text(_voc_xml(name, a.width, a.height, a, classes),
                                                             encoding="utf-8")
        (out / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(n + "\n" for n in members))
    (out / "classes.txt").write_text("".join(c + "\n" for c in classes), encoding="utf-8")


def _write_coco(datasets, classes, out, notes):
    (out / "annotations").mkdir(parents=True)
    categories = [{"id": k + 1, "name": c} for k, c in enumerate(classes)]
    for split, d in datasets.items():
        folder = out / "images" / split
        folder.mkdir(parents=True)
        names = _Names()
        images, anns = [], []
        for i, a in enumerate(d.annotations):
            file = Path(d.image_path(i))
            target = f"{names(file)}{file.suffix.lower()}"
            shutil.copyfile(file, folder / target)
            images.append({"id": i + 1, "file_name": target, "width": a.width, "height": a.height})
            for box, label, difficult in zip(a.boxes, a.labels, a.difficult):
                x, y, w, h = coco_bbox(box, a.width, a.height)
                anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": int(label) + 1,
                             "bbox": [x, y, w, h], "area": w * h, "iscrowd": int(difficult)})
        doc = {"images": images, "annotations": anns, "categories": categories}
        (out / "annotations" / f"instances_{split}.json").write_text(json.dumps(doc), encoding="utf-8")


def _write_yolo(datasets, classes, out, notes):
    import yaml

    entries = {}
    for split, d in datasets.items():
        (out / "images" / split).mkdir(parents=True)
        (out / "labels" / split).mkdir(parents=True)
        names, lines = _Names(), []
        for i, a in enumerate(d.annotations):
            file = Path(d.image_path(i))
            name = names(file)
            shutil.copyfile(file, out / "images" / split / f"{name}{file.suffix.lower()}")
            lines.append(f"./images/{split}/{name}{file.suffix.lower()}\n")
            label_lines = [yolo_line(lab, box) + "\n" for box, lab in zip(a.boxes, a.labels)]
            notes["difficult_lost"] += int(np.sum(a.difficult))
            (out / "labels" / split / f"{name}.txt").write_text("".join(label_lines))
        (out / f"{split}.txt").write_text("".join(lines))
        entries[split] = f"{split}.txt"
    doc = {"names": list(classes), **entries}
    (out / "data.yaml").write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), encoding="utf-8")


WRITERS = {"voc": _write_voc, "coco": _write_coco, "yolo": _write_yolo}

__all__ = ["convert", "voc_corners", "coco_bbox", "yolo_line"]
