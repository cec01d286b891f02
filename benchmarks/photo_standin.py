"""A small real-photo detection dataset, made from the photographs Python packages ship, to
measure what `minidet train --data ROOT` does on a user's data without tuning.

    pip install scikit-image            # its bundled photos (never a minidet dependency)
    python benchmarks/photo_standin.py OUT [--images 400] [--seed 0]
    minidet train --data OUT

No real detection dataset can be fetched on the developers' machines, so this composes
one: 11 classes of objects cut from the photographs of scikit-image and matplotlib (the
astronaut, her helmet, the shuttle, the cat, the coffee cup, the rocket, the motorcycle,
the cameraman, Grace Hopper, one of 24 coins, one of 200 LFW faces), pasted at 10–50 % of
the image side onto crops of the others (Hubble deep field, retina, tissue, brick, grass,
gravel, a printed page, the moon), with per-instance crop jitter, flips, brightness,
saturation and blur. It is written in VOC layout with `train.txt`, `trainval.txt` (the
same images) and `test.txt` and no `val.txt`, as many exports are. Most classes are
one photographed instance seen under jitter, so it is easier than real photographs of
many instances; coins and faces have many.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

# (class, source file, crop box in source pixels x1, y1, x2, y2; None = a per-instance choice)
OBJECTS = [
    ("astronaut", "astronaut.png", (20, 10, 360, 512)),
    ("helmet", "astronaut.png", (280, 340, 512, 512)),
    ("shuttle", "astronaut.png", (350, 0, 460, 280)),
    ("cat", "chelsea.png", (40, 0, 451, 300)),
    ("cup", "coffee.png", (45, 10, 490, 390)),
    ("rocket", "rocket.jpg", (280, 100, 345, 427)),
    ("motorcycle", "motorcycle_left.png", (87, 72, 700, 465)),
    ("cameraman", "camera.png", (0, 60, 310, 512)),
    ("grace_hopper", "grace_hopper.jpg", (40, 0, 512, 600)),
    ("coin", "coins.png", None),
    ("face", "lfw_subset.npy", None),
]
BACKGROUNDS = ["hubble_deep_field.jpg", "retina.jpg", "ihc.png", "brick.png", "grass.png", "gravel.png",
               "page.png", "moon.png"]
COIN_GRID = [(45 + 60 * c, 52 + 68 * r) for r in range(4) for c in range(6)]  # coins.png centres, approximate


def sources():
    import matplotlib
    import skimage

    skdata = Path(skimage.__file__).parent / "data"
    mpl = Path(matplotlib.get_data_path()) / "sample_data"
    images = {}
    for name in {o[1] for o in OBJECTS} | set(BACKGROUNDS):
        if name == "lfw_subset.npy":
            faces = np.load(skdata / name)
            images[name] = [Image.fromarray((f * 255).astype(np.uint8)).convert("RGB") for f in faces]
        else:
            path = mpl / name if name == "grace_hopper.jpg" else skdata / name
            images[name] = Image.open(path).convert("RGB")
    return images


def instance(images, k, rng):
    """One jittered crop of class k as a PIL RGB image."""
    cls, name, box = OBJECTS[k]
    if name == "lfw_subset.npy":
        img = images[name][int(rng.integers(len(images[name])))]
        box = (0, 0, img.width, img.height)
    elif box is None:  # a coin
        img = images[name]
        cx, cy = COIN_GRID[int(rng.integers(len(COIN_GRID)))]
        box = (cx - 26, cy - 26, cx + 26, cy + 26)
    else:
        img = images[name]
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    j = rng.uniform(-0.08, 0.08, 4) * [w, h, w, h]
    crop = img.crop((max(0, x1 + j[0]), max(0, y1 + j[1]), min(img.width, x2 + j[2]), min(img.height, y2 + j[3])))
    if rng.random() < 0.5:
        crop = crop.transpose(Image.FLIP_LEFT_RIGHT)
    crop = ImageEnhance.Brightness(crop).enhance(rng.uniform(0.7, 1.3))
    crop = ImageEnhance.Color(crop).enhance(rng.uniform(0.5, 1.5))
    if rng.random() < 0.2:
        crop = crop.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 1.5)))
    return cls, crop


def background(images, size, rng):
    W, H = size
    img = images[BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]]
    s = rng.uniform(0.4, 1.0) * min(img.width / W, img.height / H)
    cw, ch = int(W * s), int(H * s)
    x, y = int(rng.integers(0, img.width - cw + 1)), int(rng.integers(0, img.height - ch + 1))
    bg = img.crop((x, y, x + cw, y + ch)).resize((W, H), Image.BILINEAR)
    return ImageEnhance.Color(ImageEnhance.Brightness(bg).enhance(rng.uniform(0.6, 1.2))).enhance(rng.uniform(0.3, 1.5))


def iou(a, b):
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def compose(images, rng):
    """(image, [(class, (xmin, ymin, xmax, ymax) 1-based inclusive pixels)])."""
    W, H = int(rng.integers(280, 420)), int(rng.integers(240, 380))
    canvas = background(images, (W, H), rng)
    placed = []
    for _ in range(int(rng.integers(1, 5))):
        cls, obj = instance(images, int(rng.integers(len(OBJECTS))), rng)
        side = rng.uniform(0.10, 0.50) * min(W, H)   # the object's longer side
        scale = side / max(obj.width, obj.height)
        w, h = max(4, int(obj.width * scale)), max(4, int(obj.height * scale))
        for _ in range(20):
            x, y = int(rng.integers(0, W - w + 1)), int(rng.integers(0, H - h + 1))
            box = (x, y, x + w, y + h)
            if all(iou(box, b) < 0.2 for _, b in placed):
                canvas.paste(obj.resize((w, h), Image.BILINEAR), (x, y))
                placed.append((cls, box))
                break
    return canvas, [(cls, (x1 + 1, y1 + 1, x2, y2)) for cls, (x1, y1, x2, y2) in placed]


def xml(name, W, H, objects):
    body = "".join(f"\t<object>\n\t\t<name>{c}</name>\n\t\t<difficult>0</difficult>\n\t\t<bndbox>\n"
                   f"\t\t\t<xmin>{b[0]}</xmin>\n\t\t\t<ymin>{b[1]}</ymin>\n\t\t\t<xmax>{b[2]}</xmax>\n"
                   f"\t\t\t<ymax>{b[3]}</ymax>\n\t\t</bndbox>\n\t</object>\n" for c, b in objects)
    return (f"<annotation>\n\t<filename>{name}.jpg</filename>\n\t<size>\n\t\t<width>{W}</width>\n"
            f"\t\t<height>{H}</height>\n\t\t<depth>3</depth>\n\t</size>\n{body}</annotation>\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--test-fraction", type=float, default=0.25)
    args = parser.parse_args()
    out = Path(args.out)
    if out.exists():
        parser.error(f"{out} exists")
    images = sources()
    for sub in ("Annotations", "JPEGImages", "ImageSets/Main"):
        (out / sub).mkdir(parents=True)
    names = [f"{i + 1:06d}" for i in range(args.images)]
    for i, name in enumerate(names):
        image, objects = compose(images, np.random.default_rng([args.seed, i]))
        image.save(out / "JPEGImages" / f"{name}.jpg", quality=90)
        (out / "Annotations" / f"{name}.xml").write_text(xml(name, image.width, image.height, objects))
    order = np.random.default_rng(args.seed).permutation(args.images)
    n_test = int(round(args.test_fraction * args.images))
    test, train = sorted(names[k] for k in order[:n_test]), sorted(names[k] for k in order[n_test:])
    for split, members in (("train", train), ("trainval", train), ("test", test)):
        (out / "ImageSets" / "Main" / f"{split}.txt").write_text("".join(n + "\n" for n in members))
    (out / "classes.txt").write_text("".join(c + "\n" for c, _, _ in OBJECTS))
    print(f"wrote {args.images} images ({len(train)} train/trainval, {len(test)} test, no val) of "
          f"{len(OBJECTS)} classes to {out}")


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
