"""Error analysis of a detector, as the YOLO paper's Figure 4 does it (after Hoiem et al. 2012).

For each class c with N_c non-difficult truths, its N_c detections of highest score (over the
whole dataset; fewer if it has fewer) are sorted into, in this order of precedence:
- Correct: class c and IoU > 0.5 with a truth of class c that no higher-scoring detection of
  c has claimed (it claims it);
- Localization: class c and 0.1 < IoU ≤ 0.5 with a truth of class c, or IoU > 0.5 with one
  already claimed (a duplicate);
- Similar: IoU > 0.1 with a truth of a class similar to c (same group, another class);
- Other: IoU > 0.1 with a truth of any other class;
- Background: IoU ≤ 0.1 with every truth of the image.
"IoU with a truth of class k" is the largest IoU over the image's truths of class k. Difficult
truths are left out of N_c and of the matching. The percentages are of all the detections
sorted (Σ_c min(N_c, detections of c)): the pie of the paper, drawn here as bars.

Groups of similar classes (`class_groups`): classes named "<colour>_<shape>" (the built-in
dataset: `red_circle`, `blue_circle`) are grouped by shape; PASCAL VOC's classes by Hoiem's
groups (animals, vehicles, furniture); a dataset may declare its own in a `groups.txt` at its
root (lines "class group"). A class in no group is similar to none.

Boxes: any one frame shared by detections and truths (normalized corners in minidet).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .boxes import box_iou
from .errors import MinidetError
from .eval import _as_arrays

CATEGORIES = ("Correct", "Localization", "Similar", "Other", "Background")
VOC_GROUPS = {**{c: "animal" for c in ("bird", "cat", "cow", "dog", "horse", "sheep")},
              **{c: "vehicle" for c in ("aeroplane", "bicycle", "boat", "bus", "car", "motorbike", "train")},
              **{c: "furniture" for c in ("chair", "diningtable", "sofa")}}
COLOURED_SHAPE_SEPARATOR = "_"


def class_groups(names, root=None) -> list:
    """One group name (or None) per class of `names`, in order: `root`/groups.txt when it exists
    (a MinidetError naming the file and line on a malformed or unknown entry), else VOC's groups
    for VOC's class names, else the part after the first "_" when every name has one."""
    names = list(names)
    path = Path(root) / "groups.txt" if root is not None else None
    if path is not None and path.is_file():
        groups = {}
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2 or parts[0] not in names:
                raise MinidetError(f"{path}: line {number} must be 'class group' with a class of the dataset, "
                                   f"got {line!r}")
            groups[parts[0]] = parts[1]
        return [groups.get(n) for n in names]
    if names and all(n in VOC_GROUPS or n in ("person", "pottedplant", "tvmonitor", "bottle") for n in names):
        return [VOC_GROUPS.get(n) for n in names]
    if names and all(COLOURED_SHAPE_SEPARATOR in n for n in names):
        return [n.split(COLOURED_SHAPE_SEPARATOR, 1)[1] for n in names]
    return [None] * len(names)


def _category(cls, box, gboxes, glabels, claimed, similar) -> tuple[str, int]:
    """(category, index of the truth claimed or −1) of one detection of class `cls`."""
    if not len(gboxes):
        return "Background", -1
    iou = np.asarray(box_iou(box[None], gboxes))[0]
    mine = np.flatnonzero(glabels == cls)
    if len(mine):
        best = mine[np.argmax(iou[mine])]  # the first on ties
        if iou[best] > 0.5 and not claimed[best]:
            return "Correct", int(best)
        if iou[best] > 0.1:
            return "Localization", -1
    near = iou > 0.1
    if (near & similar[glabels]).any():
        return "Similar", -1
    if near.any():
        return "Other", -1
    return "Background", -1


def analyze(detections, ground_truths, groups) -> dict:
    """The error analysis of the module docstring.

    detections[i] = (boxes (K, 4), scores (K,), labels (K,)); ground_truths[i] = (boxes (G, 4),
    labels (G,), difficult (G,) or None), one pair per image, as `minidet.eval.evaluate` takes;
    groups: one group (or None) per class (`class_groups`). Returns {"counts": {category: n},
    "percent": {category: %}, "per_class": {class index: {category: n}}, "total": n}.
    """
    C = len(groups)
    dets, gts = _as_arrays(detections, ground_truths, C, "analyze")
    gts = [(b[~d], lab[~d]) for b, lab, d in gts]
    per_class = {}
    for c in range(C):
        n_truths = sum(int((lab == c).sum()) for _, lab in gts)
        if n_truths == 0:
            continue
        similar = np.array([groups[c] is not None and k != c and groups[k] == groups[c] for k in range(C)])
        found = [(s, img, k) for img, (b, sc, lab) in enumerate(dets) for k, s in zip(np.flatnonzero(lab == c),
                                                                                      sc[lab == c])]
        found.sort(key=lambda t: -t[0])  # a stable sort: ties keep image order
        claimed = [np.zeros(len(lab), bool) for _, lab in gts]
        counts = dict.fromkeys(CATEGORIES, 0)
        for _, img, k in found[:n_truths]:
            category, truth = _category(c, dets[img][0][k], *gts[img], claimed[img], similar)
            if truth >= 0:
                claimed[img][truth] = True
            counts[category] += 1
        per_class[c] = counts
    counts = {k: sum(p[k] for p in per_class.values()) for k in CATEGORIES}
    total = sum(counts.values())
    percent = {k: 100.0 * v / total if total else 0.0 for k, v in counts.items()}
    return {"counts": counts, "percent": percent, "per_class": per_class, "total": total}


def describe(result: dict, title: str = "") -> str:
    """The percentages as lines of text ("Correct 71.6 % (1234)")."""
    lines = [title] if title else []
    lines += [f"  {k:<13} {result['percent'][k]:5.1f} % ({result['counts'][k]})" for k in CATEGORIES]
    lines.append(f"  of {result['total']} detections (each class's top N, N its number of truths)")
    return "\n".join(lines)


def draw_chart(result: dict, path, title: str = ""):
    """The five categories' percentages as horizontal bars (the paper draws a pie), written to
    `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    colours = ("#4caf50", "#ff9800", "#2196f3", "#9c27b0", "#f44336")
    values = [result["percent"][k] for k in CATEGORIES]
    fig, ax = plt.subplots(figsize=(6, 3))
    y = np.arange(len(CATEGORIES))[::-1]
    ax.barh(y, values, color=colours)
    for yi, v, k in zip(y, values, CATEGORIES):
        ax.text(v + 1, yi, f"{v:.1f}% ({result['counts'][k]})", va="center")
    ax.set_yticks(y, CATEGORIES)
    ax.set_xlim(0, 115)
    ax.set_xlabel(f"% of {result['total']} top detections")
    ax.set_title(title or "error analysis")
    fig.tight_layout()
    fig.savefig(path, dpi=100, format="png")
    plt.close(fig)
