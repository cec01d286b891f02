"""What `minidet detect` checks and names before it runs the model on any image.

Each IMAGE gets `STEM_detections.png` in --out. Two inputs of the same stem (a/img.jpg and
b/img.jpg, or img.jpg and img.png) would write the same file, so the later ones get
`STEM-2_detections.png`, `STEM-3_...` in the order given (the command prints which file is
whose).
"""
from __future__ import annotations

from pathlib import Path

from .data.images import open_image
from .errors import DatasetError

SUFFIX = "_detections.png"


def output_names(images) -> list[str]:
    """One distinct output file name per input path, in order."""
    used, names = set(), []
    for path in images:
        stem = Path(path).stem
        name, k = stem + SUFFIX, 1
        while name in used:
            k += 1
            name = f"{stem}-{k}{SUFFIX}"
        used.add(name)
        names.append(name)
    return names


def check_images_readable(images) -> None:
    """DatasetError naming the first input that is missing, not an image Pillow can identify,
    or over the decompression-bomb limit (reads each file's header only)."""
    for path in images:
        if not Path(path).is_file():
            raise DatasetError(f"{path}: image file not found" if not Path(path).exists()
                               else f"{path}: not a file")
        try:
            with open_image(path):
                pass
        except DatasetError:
            raise
        except (OSError, SyntaxError, ValueError) as e:
            raise DatasetError(f"{path}: cannot read the image ({e})") from None
