"""Pictures: detections drawn on images, a sheet of them, and training curves."""
from __future__ import annotations

import colorsys

import numpy as np
from PIL import Image, ImageDraw


def class_colour(label: int):
    r, g, b = colorsys.hsv_to_rgb((label * 0.618034) % 1.0, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def to_pil(image) -> Image.Image:
    """A PIL image from (3, H, W) float in [0, 1] (CHW) or (H, W, 3) uint8 (HWC)."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[0] == 3 and a.dtype != np.uint8:
        a = (np.clip(a.transpose(1, 2, 0), 0, 1) * 255 + 0.5).astype(np.uint8)
    return Image.fromarray(a)


def draw_detections(image, boxes, labels, scores=None, class_names=None, scale: int = 1) -> Image.Image:
    """Draw normalized corner boxes [x1, y1, x2, y2] on `image`; returns a new RGB PIL image."""
    img = to_pil(image).convert("RGB")
    if scale != 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(img)
    W, H = img.size
    for k, (box, label) in enumerate(zip(np.asarray(boxes).reshape(-1, 4), np.asarray(labels).reshape(-1))):
        x1, y1, x2, y2 = box * [W, H, W, H]
        colour = class_colour(int(label))
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=2)
        name = class_names[int(label)] if class_names is not None else str(int(label))
        text = name if scores is None else f"{name} {float(scores[k]):.2f}"
        tx, ty = x1 + 2, max(0, y1 - 11)
        draw.rectangle([tx - 1, ty, tx + 6 * len(text) + 1, ty + 10], fill=colour)
        draw.text((tx, ty - 1), text, fill=(0, 0, 0))
    return img


def detection_sheet(images, detections, class_names=None, columns: int = 4, scale: int = 2) -> Image.Image:
    """A grid of images (CHW float or HWC uint8) with their detections (boxes, scores, labels)."""
    tiles = [draw_detections(im, b, lab, s, class_names, scale) for im, (b, s, lab) in zip(images, detections)]
    if not tiles:
        return Image.new("RGB", (1, 1))
    w, h = tiles[0].size
    rows = -(-len(tiles) // columns)
    sheet = Image.new("RGB", (columns * w, rows * h), (255, 255, 255))
    for i, tile in enumerate(tiles):
        sheet.paste(tile, ((i % columns) * w, (i // columns) * h))
    return sheet


def plot_curves(history: list, path_loss, path_map):
    """Loss per epoch (total and parts) and validation mAP per epoch, as two PNG files."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    # The loss and its parts: YOLO's coord/obj/noobj/cls, SSD's loc/conf, Faster R-CNN's rpn_cls/rpn_box/cls/box.
    for key in [k for k in ("loss", "coord", "obj", "noobj", "cls", "loc", "conf", "rpn_cls", "rpn_box", "box")
                if k in history[0]]:
        ax.plot(epochs, [h[key] for h in history], label=key, lw=2 if key == "loss" else 1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (mean over the epoch)")
    ax.set_yscale("log")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path_loss, dpi=100)
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, [h["val_mAP"] for h in history], marker="o")
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation mAP@0.5 (VOC all-point)")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path_map, dpi=100)
    plt.close(fig)
