"""A reader of datasets in PASCAL VOC layout.

    ROOT/ImageSets/Main/{split}.txt    one image name a line (the first word of the line)
    ROOT/Annotations/NAME.xml          the objects of image NAME
    ROOT/JPEGImages/NAME.jpg           the image
    ROOT/classes.txt                   optional: the class names, one a line

Boxes come out as normalized corner boxes `[x1, y1, x2, y2]` in continuous image
coordinates, in [0, 1] (x by the width, y by the height). VOC writes 1-based pixel
indices, both ends inclusive: a box whose leftmost pixel column is `xmin` and rightmost
is `xmax` covers the continuous interval [xmin − 1, xmax], so

    x1 = (xmin − 1) / W,   x2 = xmax / W,   y1 = (ymin − 1) / H,   y2 = ymax / H.

A box reaching outside the image is clipped to it; a box empty after clipping is
dropped. The dataset counts both (`clipped_boxes`, `dropped_boxes`) and warns once.

Annotations are parsed when the dataset is built (they are small, and a bad file should
stop a run before training starts, not an hour into it); images are decoded on access.
"""
from __future__ import annotations

import math
import warnings
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import UnidentifiedImageError

from ..errors import DatasetError
from .images import IMAGE_EXTENSIONS, decode_image, find_image, open_image, upright_size

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)


def read_classes(root) -> tuple[str, ...]:
    """The class names of the dataset at `root`: `root/classes.txt` if present, else VOC's 20.

    classes.txt holds one name a line; blank lines are ignored. The index of a name is
    its label.
    """
    path = Path(root) / "classes.txt"
    if not path.is_file():
        return VOC_CLASSES
    try:
        # utf-8-sig: a byte-order mark (as some editors write) is not part of the first name.
        names = [line.strip() for line in path.read_text(encoding="utf-8-sig").splitlines()]
    except (OSError, UnicodeDecodeError) as e:
        raise DatasetError(f"{path}: cannot read the class list ({e})") from None
    names = [n for n in names if n]
    if not names:
        raise DatasetError(f"{path}: the class list is empty")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise DatasetError(f"{path}: class names appear twice: {', '.join(repeated)}")
    return tuple(names)


@dataclass(frozen=True)
class Annotation:
    """The objects of one image, K of them.

    boxes: (K, 4) float32 normalized corner boxes [x1, y1, x2, y2] in [0, 1].
    labels: (K,) int64 class indices. difficult, truncated: (K,) bool.
    width, height: the image size in pixels.
    """

    name: str
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    truncated: np.ndarray

    @classmethod
    def of(cls, name, width, height, rows, labels, difficult=None, truncated=None) -> "Annotation":
        """From a reader's lists: rows of 4 normalized corners, labels, and (None: all False)
        the difficult and truncated flags, as the arrays and dtypes above."""
        k = len(rows)
        flags = [np.zeros(k, dtype=bool) if f is None else np.array(f, dtype=bool) for f in (difficult, truncated)]
        return cls(name=name, width=width, height=height, boxes=np.array(rows, dtype=np.float32).reshape(-1, 4),
                   labels=np.array(labels, dtype=np.int64), difficult=flags[0], truncated=flags[1])


class Sample(NamedTuple):
    """One image and its objects.

    image: (H, W, 3) uint8 RGB (HWC). boxes: (K, 4) float32 normalized corner boxes.
    labels: (K,) int64. difficult, truncated: (K,) bool. name: the VOC image name.
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    difficult: np.ndarray
    truncated: np.ndarray
    name: str


class VOCDataset:
    """The images of one split of a VOC-layout dataset, with their normalized boxes.

    VOCDataset(root, split="train", classes=None, cache_images=False)

    root: the dataset directory. split: the name of a file in ImageSets/Main (without
    .txt). classes: the class names (index = label); None reads `read_classes(root)`.
    cache_images: keep every decoded image in memory (uint8) after its first access:
    worth it for the small built-in dataset, not for VOC itself.

    `dataset[i]` is a `Sample` (the image decoded now); `dataset.annotations[i]` is the
    `Annotation` alone (no decoding). `len(dataset)` is the number of images.
    Raises DatasetError, naming the file, for a missing directory or split file, a
    missing or malformed annotation, an unknown class name, or a missing image.
    """

    def __init__(self, root, split: str = "train", classes=None, cache_images: bool = False):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DatasetError(f"{self.root}: dataset directory not found")
        self.split = split
        self.classes = tuple(classes) if classes is not None else read_classes(self.root)
        self._class_index = {name: i for i, name in enumerate(self.classes)}
        self.cache_images = cache_images
        self._cache: dict[int, np.ndarray] = {}
        self.clipped_boxes = 0
        self.dropped_boxes = 0
        self.names = self._read_split()
        self._image_paths: list[Path] = []
        self.annotations = [self._read_annotation(name) for name in self.names]
        if self.clipped_boxes or self.dropped_boxes:
            warnings.warn(
                f"{self.root} ({split}): clipped {self.clipped_boxes} boxes reaching outside "
                f"their image; dropped {self.dropped_boxes} boxes empty after clipping",
                stacklevel=2,
            )

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> Sample:
        a = self.annotations[i]
        return Sample(self.image(i), a.boxes, a.labels, a.difficult, a.truncated, a.name)

    def image_path(self, i: int) -> Path:
        """The file of image i: JPEGImages/NAME with the first of IMAGE_EXTENSIONS that exists."""
        return self._image_paths[i]

    def image(self, i: int) -> np.ndarray:
        """Image i as (H, W, 3) uint8 RGB (shared with the cache when caching: don't write to it)."""
        if i in self._cache:
            return self._cache[i]
        path = self.image_path(i)
        image = decode_image(path)
        a = self.annotations[i]
        if image.shape[:2] != (a.height, a.width):
            raise DatasetError(
                f"{path}: image is {image.shape[1]}x{image.shape[0]} but its annotation "
                f"says {a.width}x{a.height}"
            )
        if self.cache_images:
            image.flags.writeable = False
            self._cache[i] = image
        return image

    def ground_truths(self) -> list:
        """`[(boxes, labels, difficult)]` per image, the form `minidet.eval.evaluate` takes."""
        return [(a.boxes, a.labels, a.difficult) for a in self.annotations]

    # --- reading -----------------------------------------------------------------------

    def _read_split(self) -> list[str]:
        path = self.root / "ImageSets" / "Main" / f"{self.split}.txt"
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except FileNotFoundError:
            raise DatasetError(f"{path}: split file not found") from None
        except (OSError, UnicodeDecodeError) as e:
            raise DatasetError(f"{path}: cannot read the split file ({e})") from None
        return [line.split()[0] for line in lines if line.strip()]

    def _read_annotation(self, name: str) -> Annotation:
        path = self.root / "Annotations" / f"{name}.xml"
        try:
            tree = ET.parse(path)
        except FileNotFoundError:
            raise DatasetError(f"{path}: annotation file not found") from None
        except ET.ParseError as e:
            raise DatasetError(f"{path}: malformed XML ({e})") from None
        except OSError as e:
            raise DatasetError(f"{path}: cannot read the annotation ({e})") from None
        image_path = find_image(self.root / "JPEGImages", name)
        if image_path is None:
            tried = ", ".join(name + ext for ext in IMAGE_EXTENSIONS)
            raise DatasetError(f"{self.root / 'JPEGImages' / name}.jpg: image file not found "
                               f"(named by {path.name}; tried {tried})")
        self._image_paths.append(image_path)
        root = tree.getroot()
        width, height = _size(root, image_path)
        rows, labels, difficult, truncated = [], [], [], []
        for k, obj in enumerate(root.iter("object")):
            cls = _text(obj, "name", path)
            if cls not in self._class_index:
                raise DatasetError(f"{path}: class {cls!r} is not in the class list ({len(self.classes)} classes)")
            bb = obj.find("bndbox")
            if bb is None:
                raise DatasetError(f"{path}: object {cls!r} has no <bndbox>")
            xmin, ymin, xmax, ymax = (_number(bb, tag, path) for tag in ("xmin", "ymin", "xmax", "ymax"))
            if not all(math.isfinite(v) for v in (xmin, ymin, xmax, ymax)):
                raise DatasetError(f"{path}: object {k + 1} ({cls!r}) has a non-finite box coordinate: "
                                   f"xmin={xmin}, ymin={ymin}, xmax={xmax}, ymax={ymax}")
            clipped = self._kept_box([(xmin - 1) / width, (ymin - 1) / height, xmax / width, ymax / height])
            if clipped is None:
                continue
            rows.append(clipped)
            labels.append(self._class_index[cls])
            difficult.append(_flag(obj, "difficult", path))
            truncated.append(_flag(obj, "truncated", path))
        return Annotation.of(name, width, height, rows, labels, difficult, truncated)

    def _kept_box(self, box, tolerance: float = 0.0):
        """`box` (4 normalized corners) clipped to [0, 1], or None when nothing is left (counted
        in dropped_boxes); one sticking out by more than `tolerance` is counted in clipped_boxes."""
        box = np.asarray(box, dtype=np.float64)
        clipped = np.clip(box, 0.0, 1.0)
        if (np.abs(clipped - box) > tolerance).any():
            self.clipped_boxes += 1
        if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
            self.dropped_boxes += 1
            return None
        return clipped


def _text(node, tag: str, path) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DatasetError(f"{path}: <{node.tag}> has no <{tag}>")
    return child.text.strip()


def _number(node, tag: str, path) -> float:
    text = _text(node, tag, path)
    try:
        return float(text)
    except ValueError:
        raise DatasetError(f"{path}: <{tag}> is not a number: {text!r}") from None


def _flag(node, tag: str, path) -> bool:
    """An optional 0/1 field (absent means 0)."""
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        return False
    try:
        return bool(int(float(child.text)))
    except ValueError:
        raise DatasetError(f"{path}: <{tag}> is not 0 or 1: {child.text.strip()!r}") from None


def _size(root, image_path) -> tuple[int, int]:
    """(width, height) from <size>, else (absent or zero, as in a few VOC files) from the image header."""
    size = root.find("size")
    if size is not None:
        w, h = size.findtext("width"), size.findtext("height")
        try:
            width, height = int(float(w)), int(float(h))
        except (TypeError, ValueError):
            width = height = 0
        if width > 0 and height > 0:
            return width, height
    try:
        with open_image(image_path) as img:  # reads the header only
            return upright_size(img)
    except DatasetError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DatasetError(f"{image_path}: cannot read the image size ({e})") from None
