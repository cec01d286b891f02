"""Reading image files: upright, in RGB, with the file named in every error.

`decode_image(path)` is how every image of minidet is read (datasets, `minidet detect`).
`find_image(directory, name)` finds NAME under the usual extensions.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DatasetError


def decode_image(path) -> np.ndarray:
    """The image file at `path` as (H, W, 3) uint8 RGB, upright; DatasetError naming it if it
    won't decode.

    The EXIF orientation tag is applied (`ImageOps.exif_transpose`): a camera's rotated
    photo comes out as viewers and annotation tools show it, the frame its boxes are drawn
    in. Grayscale, grayscale+alpha, RGBA, palette and CMYK images are converted to RGB
    (alpha is dropped); 16-bit and float grayscale are scaled to 8 bits by their maximum.
    An image over Pillow's decompression-bomb limit (`Image.MAX_IMAGE_PIXELS`) is refused.
    """
    try:
        with open_image(path) as img:
            img.load()
            return to_rgb(upright(img))
    except DatasetError:
        raise
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DatasetError(f"{path}: cannot decode the image ({e})") from None


# EXIF orientations 5–8 turn the image by a quarter: width and height swap.
_QUARTER_TURNS = (5, 6, 7, 8)
_ORIENTATION = 0x0112


def open_image(path) -> Image.Image:
    """Image.open(path), refusing (DatasetError naming the file) images over Pillow's
    decompression-bomb limit: a 200-megapixel file would take gigabytes to decode."""
    try:
        img = Image.open(path)
    except Image.DecompressionBombError as e:
        raise DatasetError(f"{path}: refused: {e}") from None
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and img.width * img.height > limit:
        img.close()
        raise DatasetError(f"{path}: refused: the image is {img.width}x{img.height} "
                           f"({img.width * img.height / 1e6:.0f} megapixels), over Pillow's limit of "
                           f"{limit / 1e6:.0f} megapixels against decompression bombs")
    return img


def orientation(img: Image.Image) -> int:
    """The EXIF orientation tag (1 = upright) of an opened image."""
    try:
        value = img.getexif().get(_ORIENTATION, 1)
        return int(value) if value in range(1, 9) else 1
    except Exception:  # a damaged EXIF block: Pillow's own viewers ignore it too
        return 1


def upright(img: Image.Image) -> Image.Image:
    """The image turned as its EXIF orientation says (itself when it is upright)."""
    if orientation(img) == 1:
        return img
    return ImageOps.exif_transpose(img)


def upright_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) of the image as shown, after its EXIF orientation."""
    w, h = img.size
    return (h, w) if orientation(img) in _QUARTER_TURNS else (w, h)


def to_rgb(img: Image.Image) -> np.ndarray:
    """A PIL image of any mode as (H, W, 3) uint8 RGB."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        a = np.asarray(img, dtype=np.float64)
        peak = a.max() if a.size and a.max() > 0 else 1.0
        g = np.clip(a * (255.0 / peak), 0, 255).astype(np.uint8)
        return np.repeat(g[:, :, None], 3, axis=2)
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")  # via RGBA, or PIL warns about the transparent palette entry
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.asarray(img, dtype=np.uint8)


# Tried in this order for JPEGImages/NAME: VOC's own .jpg first, then what exports hold.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG", ".bmp", ".BMP")


def find_image(directory: Path, name: str) -> Path | None:
    """directory/NAME.EXT for the first EXT of IMAGE_EXTENSIONS that is a file, else None."""
    for ext in IMAGE_EXTENSIONS:
        candidate = directory / f"{name}{ext}"
        if os.path.isfile(candidate):
            return candidate
    return None
