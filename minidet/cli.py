"""The `minidet` command (also `python -m minidet`): train, eval, detect, data synth, gradcheck.

Bad input (a missing file, a damaged checkpoint, a wrong setting) ends with one line
`minidet: error: ...` on stderr and exit status 2, without a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from .errors import MinidetError


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_train(sub):
    from .ssd.task import SSD_LR
    from .train import TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="train a model (default: the reduced Fast YOLO on the built-in dataset)",
                       description="Train a YOLO v1 model. Options left out take the defaults shown, or, "
                                   "with --resume, the settings of the resumed run.")
    p.add_argument("--data", help="dataset root in VOC layout (default: the built-in synthetic dataset)")
    p.add_argument("--model", choices=["reduced", "fast", "yolo", "ssd"],
                   help=f"architecture (default {d.model}; ssd: SSD-lite on the reduced model's convolutions)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help=f"(default {d.device})")
    p.add_argument("--epochs", type=_positive_int, help=f"(default {d.epochs})")
    p.add_argument("--batch-size", type=_positive_int, help=f"(default {d.batch_size})")
    p.add_argument("--input-size", type=_positive_int, help=f"reduced model's input side (default {d.input_size})")
    p.add_argument("--width", type=float, help=f"reduced model's width multiplier (default {d.width})")
    p.add_argument("--head", choices=["conv", "fc"],
                   help="reduced model's detection head: conv (a 1x1 convolution shared by all cells; the "
                        "default) or fc (Fast YOLO's fully connected layers; fast and yolo always use fc)")
    p.add_argument("--lr", type=float, help=f"peak learning rate (default {d.lr}; {SSD_LR} for --model ssd)")
    p.add_argument("--warmup-epochs", type=float, help=f"(default {d.warmup_epochs})")
    p.add_argument("--seed", type=int, help=f"(default {d.seed})")
    p.add_argument("--lambda-coord", type=float, help=f"weight of the coordinate terms (default {d.lambda_coord})")
    p.add_argument("--pretrain-epochs", type=float,
                   help=f"first train the convolutions to classify each object's cell (default {d.pretrain_epochs})")
    p.add_argument("--no-augment", dest="augment", action="store_const", const=False, help="no augmentation")
    p.add_argument("--workers", type=_positive_int, help=f"loader threads (default {d.workers})")
    p.add_argument("--out", help="run directory (default runs/<date-time>, or the resumed run's)")
    p.add_argument("--resume", metavar="CKPT", help="continue the run saved in CKPT (its last.npz)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def cmd_train(args):
    from .train import TrainConfig, config_from_checkpoint, describe_result, train

    names = [f.name for f in fields(TrainConfig)]
    given = {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}
    base = {}
    if args.resume:
        base = {k: v for k, v in config_from_checkpoint(args.resume).items() if k in names}
        base.pop("out", None)
        base.pop("device", None)
        base.pop("workers", None)
    config = TrainConfig(**{**base, **given})
    result = train(config, resume=args.resume, progress=not args.quiet)
    print(describe_result(result))


def cmd_eval(args):
    from .data import BatchLoader, VOCDataset
    from .inference import evaluate_loader
    from .models import load_checkpoint

    model, meta = load_checkpoint(args.weights)
    classes = meta.get("classes")
    dataset = VOCDataset(args.data, args.split, cache_images=False)
    if classes is not None and list(dataset.classes) != list(classes):
        raise MinidetError(f"{args.data}: its classes ({', '.join(dataset.classes[:4])}, ...) are not the "
                           f"classes {args.weights} was trained on ({', '.join(classes[:4])}, ...)")
    classes = list(dataset.classes)
    from .backend import resolve_device

    device = resolve_device(args.device)
    model.to(device)
    with BatchLoader(dataset, args.batch_size, model.input_size) as loader:
        result, _, _ = evaluate_loader(model, loader, device, use_07_metric=args.voc07)
    named = {classes[c]: ap for c, ap in sorted(result["AP"].items())}
    for name, ap in named.items():
        print(f"  {name:<20} AP {ap:.3f}")
    metric = "VOC2007 11-point" if args.voc07 else "VOC all-point"
    print(f"mAP@0.5 ({metric}) on {args.data} [{args.split}, {len(dataset)} images]: {result['mAP']:.4f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"mAP": result["mAP"], "AP": named}, indent=1))


def cmd_detect(args):
    from .backend import resolve_device
    from .data import decode_image, resize
    from .inference import predict
    from .models import load_checkpoint
    from .visualize import draw_detections

    model, meta = load_checkpoint(args.weights)
    classes = meta.get("classes")
    device = resolve_device(args.device)
    model.to(device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        image = decode_image(path)
        (boxes, scores, labels), = predict(model, resize(image, model.input_size)[None], device,
                                          score_threshold=args.threshold)
        target = out / (Path(path).stem + "_detections.png")
        draw_detections(image, boxes, labels, scores, classes).save(target)
        names = [classes[int(c)] if classes else str(int(c)) for c in labels]
        found = ", ".join(f"{n} {s:.2f}" for n, s in zip(names, scores)) or "nothing"
        print(f"{path}: {found} → {target}")


def cmd_synth(args):
    from .data import generate

    path = generate(args.out, images=args.images, seed=args.seed)
    print(f"wrote {args.images} images in VOC layout to {path}")


def cmd_gradcheck(args):
    from .gradcheck import run_all

    ok = run_all(print)
    if not ok:
        sys.exit(1)


def build_parser():
    parser = argparse.ArgumentParser(prog="minidet", description="One-shot object detection (YOLO v1) from scratch.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    p = sub.add_parser("eval", help="VOC mAP of a checkpoint on a dataset split")
    p.add_argument("--weights", required=True, help="a checkpoint (.npz)")
    p.add_argument("--data", required=True, help="dataset root in VOC layout")
    p.add_argument("--split", default="test")
    p.add_argument("--json", help="also write {mAP, AP: {class: AP}} to this file")
    p.add_argument("--voc07", action="store_true", help="VOC2007 11-point AP instead of all-point")
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p = sub.add_parser("detect", help="draw a checkpoint's detections on images")
    p.add_argument("--weights", required=True)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--out", default="detections")
    p.add_argument("--threshold", type=float, default=0.2, help="class-specific score threshold")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p = sub.add_parser("data", help="datasets")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    s = data_sub.add_parser("synth", help="write the synthetic dataset in VOC layout")
    s.add_argument("out", help="output directory")
    s.add_argument("--images", type=_positive_int, default=2400)
    s.add_argument("--seed", type=int, default=0)
    sub.add_parser("gradcheck", help="gradient-check every layer and the loss; print a table")
    return parser


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "detect": cmd_detect, "gradcheck": cmd_gradcheck}


def _one_line_warning(message, category, filename, lineno, line=None):
    return f"minidet: warning: {' '.join(str(message).split())}\n"


def main(argv=None):
    import warnings

    warnings.formatwarning = _one_line_warning  # a user-facing note, not a source location
    args = build_parser().parse_args(argv)
    command = cmd_synth if args.command == "data" else COMMANDS[args.command]
    try:
        command(args)
    except (MinidetError, FileNotFoundError, IsADirectoryError, PermissionError) as e:
        message = " ".join(str(e).split())  # one line
        print(f"minidet: error: {message}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("minidet: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
