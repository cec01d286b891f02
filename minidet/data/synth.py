"""The built-in synthetic dataset: coloured shapes on textured backgrounds, in VOC layout.

20 classes, so the network output is the paper's 7×7×30: 4 saturated colours × 5 shapes,
named like "red_circle". Backgrounds are low-saturation (grey tints, gradients, stripes,
noise), so colour alone tells the colour half of a class and the outline the other half.

Each image holds 1 to 5 objects of side 10 % to 70 % of the image (log-uniform, so small
ones are common). Later objects may overlap earlier ones, but never cover more than 40 %
of another's box. About a fifth of the objects are cut by the border: their box is
clipped to the visible part and `truncated` is 1. No object is `difficult`.

A box is the exact extent of the object's drawn pixels (found on its mask, before any
occlusion), written as VOC's 1-based inclusive pixel indices, so `VOCDataset` reads back
[x_first / W, y_first / H, (x_last + 1) / W, (y_last + 1) / H].

Output is a pure function of (images, seed, image_size): each image draws from its own
`numpy.random.default_rng([seed, index])`, and the files are the same bytes for the same
arguments (with the same Pillow/libjpeg).
"""
from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from ..errors import DatasetError
from ..files import os_error_message

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 190, 40),
    "blue": (35, 70, 230),
    "yellow": (240, 215, 20),
}
SHAPES = ("circle", "square", "triangle", "cross", "ring")
SYNTH_CLASSES = tuple(f"{c}_{s}" for c in COLOURS for s in SHAPES)
VERSION = 1
DEFAULT_IMAGES = 2400
DEFAULT_IMAGE_SIZE = 128
JPEG_QUALITY = 90
MAX_OVERLAP = 0.4  # of the smaller box: what a later object may cover of an earlier one


def split_sizes(images: int) -> dict[str, int]:
    """Images per split: val and test 1/12 each (200 of the default 2400), train the rest."""
    held = images // 12 if images >= 12 else (1 if images >= 3 else 0)
    return {"train": images - 2 * held, "val": held, "test": held}


def generate(out_dir, images: int = DEFAULT_IMAGES, seed: int = 0,
             image_size: int = DEFAULT_IMAGE_SIZE, force: bool = False) -> Path:
    """Write the synthetic dataset in VOC layout to `out_dir` (created); return its path.

    Files: Annotations/NAME.xml, JPEGImages/NAME.jpg (image_size × image_size RGB, JPEG
    quality 90), ImageSets/Main/{train,val,test,trainval}.txt, classes.txt, synth.json
    (the arguments). Names are 000001, 000002, ...; the first images are train, then
    val, then test (see `split_sizes`).

    `out_dir` must be missing or empty: a non-empty directory raises DatasetError unless
    `force`, and even then only files this generator wrote there before (those of the
    dataset its synth.json describes) are replaced or removed; a file of the same name
    that it did not write (someone's VOC dataset also names its images 000001...) is
    never touched, and refuses the run, before anything is written. The files are made
    in a hidden sibling directory and moved into place at the end, so an error or an
    interrupt leaves `out_dir` as it was.
    """
    if images < 1:
        raise ValueError(f"images must be at least 1, got {images}")
    if image_size < 16:
        raise ValueError(f"image_size must be at least 16 pixels, got {image_size}")
    out = Path(out_dir)
    names = [f"{i + 1:06d}" for i in range(images)]
    new_files = dataset_files(images)
    replaced = _previous_files(out, new_files, force)
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        stage.chmod(0o777 & ~_umask())  # mkdtemp's 0700 would otherwise become the dataset's
        for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
            (stage / sub).mkdir(parents=True)

        def write(i: int) -> None:
            image, objects = draw_image(np.random.default_rng([seed, i]), image_size)
            image.save(stage / "JPEGImages" / f"{names[i]}.jpg", quality=JPEG_QUALITY)
            (stage / "Annotations" / f"{names[i]}.xml").write_text(_xml(names[i], image_size, objects),
                                                                   encoding="utf-8")

        # Threads help a little (NumPy, Pillow and file writes release the GIL); each image has
        # its own generator, so the bytes do not depend on the order the threads run in.
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
            for _ in pool.map(write, range(images)):
                pass
        sizes = split_sizes(images)
        start, splits = 0, {}
        for split in ("train", "val", "test"):
            splits[split] = names[start:start + sizes[split]]
            start += sizes[split]
        splits["trainval"] = splits["train"] + splits["val"]
        for split, members in splits.items():
            (stage / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(n + "\n" for n in members))
        (stage / "classes.txt").write_text("".join(c + "\n" for c in SYNTH_CLASSES))
        meta = {"version": VERSION, "images": images, "seed": seed, "image_size": image_size}
        (stage / "synth.json").write_text(json.dumps(meta, sort_keys=True) + "\n")
        if not out.exists() or not any(out.iterdir()):
            os.replace(stage, out)  # a rename replaces an empty directory
        else:
            _move_into(stage, out, new_files, replaced)
    except OSError as e:  # a full disk, a read-only file system: one error naming the place
        raise DatasetError(f"{out}: cannot write the synthetic dataset ({os_error_message(e)})") from None
    finally:
        if stage.exists():
            shutil.rmtree(stage, ignore_errors=True)
    return out


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def dataset_files(images: int) -> list[str]:
    """The relative paths (POSIX) `generate(..., images=images)` writes."""
    names = [f"{i + 1:06d}" for i in range(images)]
    return ([f"Annotations/{n}.xml" for n in names] + [f"JPEGImages/{n}.jpg" for n in names]
            + [f"ImageSets/Main/{s}.txt" for s in ("train", "val", "test", "trainval")]
            + ["classes.txt", "synth.json"])


def _previous_files(out: Path, new_files, force: bool) -> list[str]:
    """The files of an earlier `generate` in `out` (to replace or remove); DatasetError if
    `out` is not a directory, is not empty without `force`, or holds a file of a name this
    run writes that an earlier run did not."""
    if not out.exists():
        return []
    if not out.is_dir():
        raise DatasetError(f"{out}: exists and is not a directory")
    if not any(out.iterdir()):
        return []
    if not force:
        raise DatasetError(f"{out}: the directory is not empty; choose a new or empty one (or add "
                           f"--force to replace a synthetic dataset written there before; other files "
                           f"are never touched)")
    previous = []
    marker = out / "synth.json"
    if marker.is_file():
        try:
            meta = json.loads(marker.read_text(encoding="utf-8"))
            previous = dataset_files(int(meta["images"]))
        except (OSError, ValueError, KeyError, TypeError):
            previous = []
    own = set(previous)
    for rel in new_files:
        if rel not in own and (out / rel).exists():
            raise DatasetError(f"{out / rel}: exists and was not written by minidet data synth; "
                               f"not replacing it (choose a new or empty directory)")
    return [rel for rel in previous if (out / rel).is_file()]


def _move_into(stage: Path, out: Path, new_files, previous) -> None:
    """Move the staged files into `out`; remove the earlier run's files this one does not write."""
    for rel in new_files:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage / rel, target)
    keep = set(new_files)
    for rel in previous:
        if rel not in keep:
            with contextlib.suppress(FileNotFoundError):
                (out / rel).unlink()


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/minidet`, or `~/.cache/minidet` when XDG_CACHE_HOME is unset or empty."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "minidet"


def builtin_dataset(root=None, images: int = DEFAULT_IMAGES, seed: int = 0) -> Path:
    """The path of the built-in synthetic dataset, generated on first use.

    Default location: `cache_dir() / f"synth-v{VERSION}-seed{seed}-n{images}"`; `root`
    overrides it. The dataset is written into a temporary sibling directory and renamed
    into place, so an interrupted run never leaves half a dataset where a later run
    would take it for a whole one. An existing complete dataset is reused; an existing
    non-empty directory that is not one raises DatasetError.
    """
    path = Path(root) if root is not None else cache_dir() / f"synth-v{VERSION}-seed{seed}-n{images}"
    marker = path / "synth.json"
    if marker.is_file():
        return path
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        raise DatasetError(f"{path}: exists and is not a minidet synthetic dataset (no synth.json)")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-", dir=path.parent))
    try:
        generate(tmp, images=images, seed=seed)
        try:
            os.replace(tmp, path)  # atomic; replaces `path` only when it is an empty directory
        except OSError:
            if not marker.is_file():  # not a concurrent generator that finished first
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return path


# --- drawing ----------------------------------------------------------------------------


def draw_image(rng: np.random.Generator, size: int):
    """One synthetic image and its objects.

    Returns (PIL RGB image of size × size, [(class_name, (x0, y0, x1, y1), truncated)])
    with x0..x1, y0..y1 the 0-based inclusive pixel extent of each object.
    """
    canvas = Image.fromarray(_background(rng, size))
    objects, boxes = [], []
    for _ in range(int(rng.integers(1, 6))):
        for _attempt in range(20):
            colour, shape = rng.integers(len(COLOURS)), rng.integers(len(SHAPES))
            side = size * float(np.exp(rng.uniform(np.log(0.10), np.log(0.70))))
            cut = rng.random() < 0.2
            cx, cy = rng.uniform(side / 2, size - side / 2, size=2)
            if cut:  # push it past one border by 10 % to 40 % of its side
                edge, past = rng.integers(4), rng.uniform(0.1, 0.4) * side
                if edge < 2:
                    cx = side / 2 - past if edge == 0 else size - side / 2 + past
                else:
                    cy = side / 2 - past if edge == 2 else size - side / 2 + past
            # Draw on a mask just around the shape, then look at the part inside the canvas.
            ox, oy = int(np.floor(cx - side / 2)) - 1, int(np.floor(cy - side / 2)) - 1
            mask = Image.new("L", (int(np.ceil(side)) + 3,) * 2, 0)
            _draw_shape(ImageDraw.Draw(mask), SHAPES[shape], cx - ox, cy - oy, side, rng)
            m = np.asarray(mask)
            visible = m[max(0, -oy):size - oy, max(0, -ox):size - ox]
            cols, rows = np.flatnonzero(visible.any(axis=0)), np.flatnonzero(visible.any(axis=1))
            if cols.size < 2 or rows.size < 2:
                continue
            x0, y0 = max(0, ox), max(0, oy)
            box = (x0 + int(cols[0]), y0 + int(rows[0]), x0 + int(cols[-1]), y0 + int(rows[-1]))
            if any(_overlap(box, b) > MAX_OVERLAP for b in boxes):
                continue
            truncated = bool(np.count_nonzero(visible) < np.count_nonzero(m))
            name = list(COLOURS)[colour]
            fill = tuple(min(255, max(0, v + int(j))) for v, j in zip(COLOURS[name], rng.integers(-15, 16, size=3)))
            canvas.paste(fill, (ox, oy), mask=mask)
            boxes.append(box)
            objects.append((f"{name}_{SHAPES[shape]}", box, truncated))
            break
    # Grain over the shapes as well as the background, so flat colour is not a give-away.
    # Pillow adds and clips in C: grain stored offset by 128, taken off again by `offset`.
    grain = rng.standard_normal((size, size), dtype=np.float32) * np.float32(rng.uniform(2, 8)) + np.float32(128)
    grain = Image.fromarray(np.clip(grain, 0, 255).astype(np.uint8)).convert("RGB")
    return ImageChops.add(canvas, grain, 1.0, -128), objects


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) uint8: a grey tint plus a gradient and maybe stripes, all low-saturation."""
    y, x = _grid(size)
    base = rng.uniform(70, 190)
    tint = rng.uniform(-12, 12, size=3).astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    slope = rng.uniform(-40, 40)
    grey = np.float32(slope * np.cos(angle)) * x + np.float32(slope * np.sin(angle)) * y
    grey += np.float32(base - slope * (np.cos(angle) + np.sin(angle)) / 2)
    if rng.random() < 0.5:
        period, phase, theta = rng.uniform(0.05, 0.25), rng.uniform(0, 2 * np.pi), rng.uniform(0, np.pi)
        k = 2 * np.pi / period
        wave = np.float32(k * np.cos(theta)) * x + np.float32(k * np.sin(theta)) * y + np.float32(phase)
        grey += np.float32(rng.uniform(8, 25)) * np.sin(wave)
    rgb = grey[:, :, None] + tint
    np.clip(rgb, 0, 255, out=rgb)
    return rgb.astype(np.uint8)


@functools.lru_cache(maxsize=4)
def _grid(size: int):
    """(y, x) float32 (size, size) coordinate planes in [0, 1)."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float32) / size
    return y, x


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, cx: float, cy: float, side: float, rng) -> None:
    """Fill `shape` (255) centred at (cx, cy) with side `side` pixels into a mask."""
    r = side / 2
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif shape == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        ri = 0.55 * r
        draw.ellipse([cx - ri, cy - ri, cx + ri, cy + ri], fill=0)
    else:
        angle = rng.uniform(-0.3, 0.3)  # a small tilt, radians
        if shape == "square":
            pts = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
            scale = r / np.sqrt(1 + abs(np.sin(2 * angle)))  # keep the tilted square within ~side
        elif shape == "triangle":
            pts = [(0, -1), (0.95, 0.85), (-0.95, 0.85)]
            scale = r
        else:  # cross: a plus sign with arms a third of the side wide
            a = 1 / 3
            pts = [(-a, -1), (a, -1), (a, -a), (1, -a), (1, a), (a, a), (a, 1), (-a, 1),
                   (-a, a), (-1, a), (-1, -a), (-a, -a)]
            scale = r / np.sqrt(1 + abs(np.sin(2 * angle)))
        c, s = np.cos(angle), np.sin(angle)
        draw.polygon([(cx + scale * (c * px - s * py), cy + scale * (s * px + c * py)) for px, py in pts], fill=255)


def _overlap(a, b) -> float:
    """Intersection of two inclusive pixel boxes over the area of the smaller one."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return iw * ih / min(area_a, area_b)


def _xml(name: str, size: int, objects) -> str:
    """A VOC annotation: 1-based inclusive pixel boxes."""
    parts = [
        "<annotation>\n",
        "\t<folder>minidet-synth</folder>\n",
        f"\t<filename>{name}.jpg</filename>\n",
        f"\t<size>\n\t\t<width>{size}</width>\n\t\t<height>{size}</height>\n\t\t<depth>3</depth>\n\t</size>\n",
        "\t<segmented>0</segmented>\n",
    ]
    for cls, (x0, y0, x1, y1), truncated in objects:
        parts.append(
            f"\t<object>\n\t\t<name>{cls}</name>\n\t\t<pose>Unspecified</pose>\n"
            f"\t\t<truncated>{int(truncated)}</truncated>\n\t\t<difficult>0</difficult>\n"
            f"\t\t<bndbox>\n\t\t\t<xmin>{x0 + 1}</xmin>\n\t\t\t<ymin>{y0 + 1}</ymin>\n"
            f"\t\t\t<xmax>{x1 + 1}</xmax>\n\t\t\t<ymax>{y1 + 1}</ymax>\n\t\t</bndbox>\n\t</object>\n"
        )
    parts.append("</annotation>\n")
    return "".join(parts)
