"""The `minidet` command (also `python -m minidet`): train, eval, analyze, detect, data synth, gradcheck.

Bad input (a missing file, a damaged checkpoint, a wrong setting) ends with one line
`minidet: error: ...` on stderr and exit status 2, without a traceback.
"""
from __future__ import annotations

import argparse
import inspect
import json
import sys
from dataclasses import fields
from pathlib import Path

from .backend import DEVICE_CHOICES

from .errors import MinidetError
from .files import atomic_write, os_error_message, refuse_existing, write_text_atomic


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _default(fn, name: str):
    """The default of argument `name` of library function `fn`: its one home, not repeated here."""
    return inspect.signature(fn).parameters[name].default


def _add_train(sub):
    from .families import FAMILIES
    from .train import TrainConfig

    d = TrainConfig()
    p = sub.add_parser("train", help="train a model (default: the reduced Fast YOLO on the built-in dataset)",
                       description="Train a YOLO v1 model. Options left out take the defaults shown, or, "
                                   "with --resume, the settings of the resumed run.")
    p.add_argument("--data", action="append",
                   help="dataset root in VOC, COCO or YOLO layout (default: the built-in synthetic dataset); "
                        "repeat it to train on several datasets at once (same classes), e.g. VOC 2007 and 2012")
    p.add_argument("--train-split", help="split to train on (default train, else trainval)")
    p.add_argument("--val-split", help="split to validate on (default val, else 10 %% of the training split)")
    p.add_argument("--test-split", help="split to test on, in every dataset that has it (default test)")
    p.add_argument("--model", choices=list(FAMILIES),
                   help=f"architecture (default {d.model}; ssd: SSD-lite; faster, fast-rcnn, rcnn: the two-stage "
                        f"detectors, see the README's section Two stages)")
    p.add_argument("--device", choices=DEVICE_CHOICES, help=f"(default {d.device})")
    p.add_argument("--epochs", type=_positive_int,
                   help="(default: enough epochs for the built-in dataset's number of optimizer steps, "
                        "20 epochs of 2000 images at batch 32)")
    p.add_argument("--batch-size", type=_positive_int, help=f"(default {d.batch_size})")
    p.add_argument("--input-size", type=_positive_int, help=f"reduced model's input side (default {d.input_size})")
    p.add_argument("--width", type=float, help=f"reduced model's width multiplier (default {d.width})")
    p.add_argument("--head", choices=["conv", "fc"],
                   help="reduced model's detection head: conv (a 1x1 convolution shared by all cells; the "
                        "default) or fc (Fast YOLO's fully connected layers; fast and yolo always use fc)")
    other_lr = "; ".join(f"{f.lr} for --model {f.name}" for f in FAMILIES.values() if f.lr != d.lr)
    p.add_argument("--lr", type=float, help=f"peak learning rate (default {d.lr}; {other_lr})")
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
    p.add_argument("--force", action="store_true", help="write into an --out holding another run's files")


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
        if given.get("model", base.get("model")) != base.get("model"):
            # Another --model: its head is its own default, so the refusal names --model.
            base.pop("head", None)
    if isinstance(given.get("data"), list) and len(given["data"]) == 1:
        given["data"] = given["data"][0]
    config = TrainConfig(**{**base, **given})
    result = train(config, resume=args.resume, progress=not args.quiet, force=args.force)
    print(describe_result(result))


def cmd_eval(args):
    from .inference import evaluate_checkpoint

    if args.json:
        refuse_existing(args.json, args.force, " (--json)")
    result, _, _, dataset = evaluate_checkpoint(args.weights, args.data, args.split, args.batch_size, args.device,
                                                use_07_metric=args.voc07)
    classes = list(dataset.classes)
    named = {classes[c]: ap for c, ap in sorted(result["AP"].items())}
    metric = "VOC2007 11-point" if args.voc07 else "VOC all-point"
    print(f"metric: {metric} AP at IoU 0.5 ("
          + ("recall thresholds numpy.arange(0, 1.1, 0.1), as the devkit's Python ports)" if args.voc07
             else "area under the precision envelope, VOC2010+; --voc07 for the 11-point AP)"))
    for name, ap in named.items():
        print(f"  {name:<20} AP {ap:.3f}")
    print(f"mAP@0.5 ({metric}) on {args.data} [{args.split}, {len(dataset)} images]: {result['mAP']:.4f}")
    if args.json:
        write_text_atomic(args.json, json.dumps({"mAP": result["mAP"], "AP": named}, indent=1))


def cmd_analyze(args):
    from .analysis import analyze, class_groups, describe, draw_chart
    from .inference import evaluate_checkpoint

    if args.out:
        refuse_existing(args.out, args.force, " (--out)")
    _, detections, truths, dataset = evaluate_checkpoint(args.weights, args.data, args.split, args.batch_size,
                                                         args.device)
    result = analyze(detections, truths, class_groups(dataset.classes, args.data))
    print(describe(result, f"error analysis of {args.weights} on {args.data} [{args.split}, {len(dataset)} images]"))
    if args.out:
        with atomic_write(args.out) as tmp:
            draw_chart(result, tmp, f"{Path(args.weights).name} on {args.split}")
        print(f"chart: {args.out}")


def cmd_detect(args):
    from .backend import resolve_device
    from .data import decode_image, resize
    from .detect_outputs import check_images_readable, output_names
    from .inference import predict
    from .models import load_checkpoint
    from .validate import check_threshold
    from .visualize import draw_detections

    check_threshold(args.threshold)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise MinidetError(f"--out {out}: exists and is not a directory")
    targets = [out / name for name in output_names(args.images)]
    for target in targets:
        refuse_existing(target, args.force, " (an earlier detect's output)")
    check_images_readable(args.images)
    model, meta = load_checkpoint(args.weights)
    classes = meta.get("classes")
    device = resolve_device(args.device)
    model.to(device)
    for path, target in zip(args.images, targets):
        image = decode_image(path)
        (boxes, scores, labels), = predict(model, resize(image, model.input_size)[None], device,
                                          score_threshold=args.threshold)
        with atomic_write(target) as tmp, open(tmp, "wb") as f:
            draw_detections(image, boxes, labels, scores, classes).save(f, format="PNG")
        names = [classes[int(c)] if classes else str(int(c)) for c in labels]
        found = ", ".join(f"{n} {s:.2f}" for n, s in zip(names, scores)) or "nothing"
        print(f"{path}: {found} → {target}")


def cmd_synth(args):
    from .data import generate

    path = generate(args.out, images=args.images, seed=args.seed, force=args.force)
    print(f"wrote {args.images} images in VOC layout to {path}")


def cmd_import_darknet(args):
    from .models import save
    from .models.darknet import classes_for, import_darknet

    out = Path(args.out)
    if out.exists() and not args.force:
        raise MinidetError(f"{out} exists; pass --force to overwrite it")
    model = import_darknet(args.cfg, args.weights)
    classes = classes_for(model.C, args.classes, args.cfg)
    save(model, out, classes=list(classes), source={"cfg": str(args.cfg), "weights": str(args.weights)})
    print(f"wrote {out}: {model.arch['name']} network of {args.cfg} ({model.num_parameters() / 1e6:.2f} M "
          f"parameters, input {model.input_size}, S={model.S} B={model.B} C={model.C}); "
          f"try: minidet detect --weights {out} IMAGE")


def cmd_data_convert(args):
    from .data.convert import convert

    counts = convert(args.src, args.dst, args.to, force=args.force)
    print(f"wrote {args.dst} in {args.to.upper()} layout: "
          + ", ".join(f"{split} {n} images" for split, n in counts.items()))


def cmd_data_stats(args):
    from .data.layouts import detect_layout, open_dataset, splits_of
    from .data.stats import dataset_stats, describe_stats

    splits = [args.split] if args.split else splits_of(args.root)
    if not splits:
        raise MinidetError(f"{args.root}: no split found")
    print(f"{args.root}: {detect_layout(args.root).upper()} layout")
    for split in splits:
        print(describe_stats(dataset_stats(open_dataset(args.root, split), S=args.S), split))


def cmd_data_show(args):
    from .data.layouts import open_dataset
    from .data.stats import sample_sheet

    dataset = open_dataset(args.root, args.split)
    if len(dataset) == 0:
        raise MinidetError(f"{args.root}: split {args.split} has no images")
    out = sample_sheet(dataset, args.out, args.count, augment=args.augment, input_size=args.input_size,
                       seed=args.seed)
    print(f"wrote {out}: {min(args.count, len(dataset))} {'augmented ' if args.augment else ''}samples of "
          f"{args.root} [{args.split}] with their boxes")


def cmd_gradcheck(args):
    from .gradcheck import run_all

    ok = run_all(print)
    if not ok:
        sys.exit(1)


def build_parser():
    from .data import generate
    from .data.stats import dataset_stats, sample_sheet
    from .inference import DRAW_SCORE_THRESHOLD
    from .train import TrainConfig

    parser = argparse.ArgumentParser(prog="minidet", description="One-shot object detection (YOLO v1) from scratch.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    for name, help_, output, output_help in (
            ("eval", "VOC mAP of a checkpoint on a dataset split", "--json", "also write {mAP, AP: {class: AP}} to this file"),
            ("analyze", "error analysis: Correct, Localization, Similar, Other, Background", "--out",
             "also draw the chart to this PNG file")):
        p = sub.add_parser(name, help=help_)
        p.add_argument("--weights", required=True, help="a checkpoint (.npz) of any detector")
        p.add_argument("--data", required=True, help="dataset root in VOC, COCO or YOLO layout")
        p.add_argument("--split", default="test")
        p.add_argument(output, help=output_help)
        p.add_argument("--force", action="store_true", help=f"replace an existing {output} file")
        p.add_argument("--batch-size", type=_positive_int, default=TrainConfig.batch_size)
        p.add_argument("--device", choices=DEVICE_CHOICES, default=TrainConfig.device)
        if name == "eval":
            p.add_argument("--voc07", action="store_true", help="VOC2007 11-point AP instead of all-point")
    p = sub.add_parser("detect", help="draw a checkpoint's detections on images")
    p.add_argument("--weights", required=True)
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--out", default="detections")
    p.add_argument("--force", action="store_true", help="replace earlier outputs of the same names in --out")
    p.add_argument("--threshold", type=float, default=DRAW_SCORE_THRESHOLD, help="class-specific score threshold")
    p.add_argument("--device", choices=DEVICE_CHOICES, default=TrainConfig.device)
    p = sub.add_parser("data", help="datasets")
    data_sub = p.add_subparsers(dest="data_command", required=True)
    s = data_sub.add_parser("synth", help="write the synthetic dataset in VOC layout")
    s.add_argument("out", help="output directory")
    s.add_argument("--images", type=_positive_int, default=_default(generate, "images"))
    s.add_argument("--seed", type=int, default=_default(generate, "seed"))
    s.add_argument("--force", action="store_true",
                   help="write into a non-empty directory, replacing only a synthetic dataset written there "
                        "before (other files are never touched)")
    s = data_sub.add_parser("convert", help="write a dataset in another layout (VOC, COCO or YOLO)")
    s.add_argument("src", help="dataset root, any layout")
    s.add_argument("dst", help="output directory (must not exist, unless --force)")
    s.add_argument("--to", required=True, choices=["voc", "coco", "yolo"])
    s.add_argument("--force", action="store_true", help="replace DST if it exists")
    s = data_sub.add_parser("stats", help="images, objects per class, sizes, objects sharing a YOLO cell")
    s.add_argument("root", help="dataset root, any layout")
    s.add_argument("--split", help="one split (default: every split the dataset defines)")
    s.add_argument("--S", type=_positive_int, default=_default(dataset_stats, "S"),
                   help="grid size for the shared-cell count (default %(default)s)")
    s = data_sub.add_parser("show", help="a sheet of samples with their boxes (PNG)")
    s.add_argument("root", help="dataset root, any layout")
    s.add_argument("--split", default="train")
    s.add_argument("--augment", action="store_true", help="as training sees them (the paper's augmentation)")
    s.add_argument("--count", type=_positive_int, default=_default(sample_sheet, "count"))
    s.add_argument("--input-size", type=_positive_int, default=_default(sample_sheet, "input_size"),
                   help="side of each sample (default %(default)s)")
    s.add_argument("--seed", type=int, default=_default(sample_sheet, "seed"))
    s.add_argument("--out", default="samples.png")
    sub.add_parser("gradcheck", help="gradient-check every layer and the loss; print a table")
    p = sub.add_parser("import-darknet", help="convert a darknet YOLO v1 cfg + .weights to a minidet checkpoint")
    p.add_argument("cfg", help="darknet cfg (yolo.cfg / yolo-tiny.cfg of 2015, tiny-yolo.cfg of 2016)")
    p.add_argument("weights", help="darknet .weights file for that cfg")
    p.add_argument("out", help="checkpoint to write (.npz)")
    p.add_argument("--classes", help="class names, one a line (default: the 20 VOC classes when C = 20)")
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")
    sub.add_parser("doctor", help="versions, driver, device, simulator; what to install for the GPU")
    return parser


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "analyze": cmd_analyze, "detect": cmd_detect,
            "gradcheck": cmd_gradcheck, "import-darknet": cmd_import_darknet}


DATA_COMMANDS = {"synth": cmd_synth, "convert": cmd_data_convert, "stats": cmd_data_stats, "show": cmd_data_show}


def cmd_doctor(args):
    from .doctor import run

    sys.exit(run())


COMMANDS["doctor"] = cmd_doctor


def _one_line_warning(message, category, filename, lineno, line=None):
    return f"minidet: warning: {' '.join(str(message).split())}\n"


def _fail(message: str):
    print(f"minidet: error: {' '.join(message.split())}", file=sys.stderr)  # one line
    sys.exit(2)


def main(argv=None):
    import warnings

    warnings.formatwarning = _one_line_warning  # a user-facing note, not a source location
    # Images over Pillow's limit are refused in one line naming the file (data.images.open_image);
    # Pillow's own warning, which names none, would only come before it.
    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    args = build_parser().parse_args(argv)
    command = DATA_COMMANDS[args.data_command] if args.command == "data" else COMMANDS[args.command]
    try:
        command(args)
    except MinidetError as e:
        _fail(str(e))
    except OSError as e:  # a full disk, a read-only file system, a path under a file...
        _fail(os_error_message(e))
    except KeyboardInterrupt:
        print("minidet: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
