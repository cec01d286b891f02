"""A reader of datasets in COCO layout, behind VOCDataset's interface.

    ROOT/annotations/instances_{split}.json   COCO's "images", "annotations", "categories"
    ROOT/{split}/FILE or ROOT/images/{split}/FILE   the images ("file_name" of each image)

Classes are the categories' names in ascending category id (COCO's ids need not be
contiguous: label k is the k-th smallest id). A bbox is [x, y, w, h] in pixels, continuous
coordinates from the image's top-left corner, so the normalized corner box is

    x1 = x / W,   y1 = y / H,   x2 = (x + w) / W,   y2 = (y + h) / H,

computed in float64 and stored as float32, as the VOC reader does. Objects with `iscrowd`
set count as difficult (ignored by the evaluation, left out of training, as VOC's).
Boxes reaching outside the image are clipped and empty ones dropped, counted and warned
about once, as in VOCDataset.

Bad input raises DatasetError naming the file: invalid JSON, a missing key, a bbox that is
not four numbers or has a negative size, a category id not in "categories", an image id
not in "images", an image file that does not exist.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path

from ..errors import DatasetError
from .voc import Annotation, VOCDataset


def annotation_file(root, split) -> Path:
    return Path(root) / "annotations" / f"instances_{split}.json"


def _load(path):
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise DatasetError(f"{path}: annotation file not found (COCO layout: annotations/instances_SPLIT.json)") \
            from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DatasetError(f"{path}: cannot read the COCO annotations ({e})") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{path}: expected a JSON object with images, annotations and categories")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise DatasetError(f"{path}: no {key!r} list")
    return data


def _field(entry, key, path, what, kind=None):
    if not isinstance(entry, dict) or key not in entry:
        raise DatasetError(f"{path}: {what} has no {key!r}: {json.dumps(entry)[:120]}")
    value = entry[key]
    if kind is not None and not isinstance(value, kind):
        raise DatasetError(f"{path}: {what} has {key}={value!r}, expected {kind.__name__}")
    return value


def read_categories(path) -> tuple:
    """The class names of a COCO annotation file, by ascending category id."""
    return tuple(name for _, name in _categories(_load(path), path))


def _categories(data, path):
    cats = []
    for c in data["categories"]:
        cats.append((_field(c, "id", path, "a category", int), str(_field(c, "name", path, "a category"))))
    ids = [i for i, _ in cats]
    names = [n for _, n in cats]
    for label, what in ((ids, "ids"), (names, "names")):
        repeated = sorted({str(v) for v in label if label.count(v) > 1})
        if repeated:
            raise DatasetError(f"{path}: category {what} appear twice: {', '.join(repeated)}")
    if not cats:
        raise DatasetError(f"{path}: 'categories' is empty")
    return sorted(cats)


class COCODataset(VOCDataset):
    """The images of one split of a COCO-layout dataset, with their normalized boxes.

    COCODataset(root, split="train", classes=None, cache_images=False): as VOCDataset.
    classes: None reads the categories; given, the categories' names must be the same.
    `names[i]` is the image's file name without its extension.
    """

    def __init__(self, root, split: str = "train", classes=None, cache_images: bool = False):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: dataset directory not found")
        self.split = split
        self.annotation_path = path = annotation_file(self.root, split)
        data = _load(path)
        cats = _categories(data, path)
        found = tuple(name for _, name in cats)
        if classes is not None and tuple(classes) != found:
            raise DatasetError(f"{path}: its categories ({', '.join(found[:4])}, ...) are not the classes "
                               f"{', '.join(tuple(classes)[:4])}, ...")
        self.classes = found
        label_of = {cid: k for k, (cid, _) in enumerate(cats)}
        self.cache_images = cache_images
        self._cache = {}
        self.clipped_boxes = self.dropped_boxes = 0
        folder = self._image_folder()
        images, order = {}, []
        for entry in data["images"]:
            iid = _field(entry, "id", path, "an image")
            if iid in images:
                raise DatasetError(f"{path}: image id {iid} appears twice")
            images[iid] = dict(file=str(_field(entry, "file_name", path, "an image", str)),
                               width=_field(entry, "width", path, "an image", int),
                               height=_field(entry, "height", path, "an image", int), objects=[])
            if images[iid]["width"] < 1 or images[iid]["height"] < 1:
                raise DatasetError(f"{path}: image {iid} has size {images[iid]['width']}x{images[iid]['height']}")
            order.append(iid)
        for ann in data["annotations"]:
            iid = _field(ann, "image_id", path, "an annotation")
            cid = _field(ann, "category_id", path, "an annotation")
            bbox = _field(ann, "bbox", path, "an annotation")
            if iid not in images:
                raise DatasetError(f"{path}: annotation {ann.get('id')} refers to image id {iid}, not in 'images'")
            if cid not in label_of:
                raise DatasetError(f"{path}: annotation {ann.get('id')} has category_id {cid}, not in 'categories'")
            if not (isinstance(bbox, list) and len(bbox) == 4 and
                    all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)):
                raise DatasetError(f"{path}: annotation {ann.get('id')}: bbox must be [x, y, w, h], got {bbox!r}")
            if bbox[2] < 0 or bbox[3] < 0:
                raise DatasetError(f"{path}: annotation {ann.get('id')}: bbox {bbox} has a negative size")
            images[iid]["objects"].append((label_of[cid], [float(v) for v in bbox], bool(ann.get("iscrowd", 0))))
        self._files = [folder / images[iid]["file"] for iid in order]
        self.names = [Path(images[iid]["file"]).with_suffix("").as_posix() for iid in order]
        self.annotations = [self._annotation(images[iid], name) for iid, name in zip(order, self.names)]
        for file in self._files:
            if not file.is_file():
                raise DatasetError(f"{file}: image file not found (named by {path.name})")
        if self.clipped_boxes or self.dropped_boxes:
            warnings.warn(f"{path}: clipped {self.clipped_boxes} boxes reaching outside their image; dropped "
                          f"{self.dropped_boxes} boxes empty after clipping", stacklevel=2)

    def _image_folder(self) -> Path:
        for folder in (self.root / self.split, self.root / "images" / self.split):
            if folder.is_dir():
                return folder
        raise DatasetError(f"{self.root}: no image folder {self.split}/ or images/{self.split}/ for "
                           f"{self.annotation_path.name}")

    def _annotation(self, image, name) -> Annotation:
        W, H = image["width"], image["height"]
        rows, labels, crowd = [], [], []
        for label, (x, y, w, h), iscrowd in image["objects"]:
            clipped = self._kept_box([x / W, y / H, (x + w) / W, (y + h) / H])
            if clipped is None:
                continue
            rows.append(clipped)
            labels.append(label)
            crowd.append(iscrowd)
        return Annotation.of(name, W, H, rows, labels, difficult=crowd)

    def image_path(self, i: int) -> Path:
        return self._files[i]


__all__ = ["COCODataset", "annotation_file", "read_categories"]
