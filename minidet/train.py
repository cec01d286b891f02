"""Training a YOLO v1 model: the loop, its checkpoints, metrics and pictures.

`train(TrainConfig(...))` runs the recipe of the paper at the configured size: SGD with
momentum 0.9 and decay 5e-4, a linear warm-up (from lr/100, see `schedule_for`) then a
cosine decay of the learning rate, the paper's augmentations, and with the fully connected
head dropout after its first layer. The reduced model's default head is a 1×1 convolution
instead (see `TrainConfig.head`), and the other departures from the paper are listed
beside their settings in `TrainConfig`. Each epoch
ends with VOC mAP@0.5 on the validation split and two checkpoints, written atomically:
`last.npz` (everything `--resume` needs) and `best.npz` (the best validation mAP; on a
tie the earlier epoch is kept, as a later one must do strictly better to replace it).
Before the first step every setting is checked and every split the run reads (train,
val, and test when ImageSets/Main/test.txt exists) is read whole, annotations and
images, so a bad file stops the run at once (minidet.validate). The checkpoints record
the dataset's absolute path and its fingerprint (class names, split sizes), which a
resumed run must match.
A non-finite loss stops the run with TrainingDiverged; `last.npz` is then the last good
state. The run directory also gets metrics.csv / metrics.json, loss.png, map.png and
detections.png (validation images with the best model's detections).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path

import numpy as np

from .backend import get_array_module, resolve_device, to_device
from .boxes import encode_targets
from .data import BatchLoader, builtin_dataset
from .data.splits import training_splits
from .errors import CheckpointError, MinidetError, TrainingDiverged
from .files import atomic_write, refuse_existing
from .inference import evaluate_loader, predict
from .layers import Dropout
from .loss import YoloLoss
from .models import build, load_checkpoint, save
from .optim import SGD, WarmupCosineLR
from .pretrain import pretrain
from .rundir import Run, check_training_state, recover_best
from .validate import (check_fingerprint, check_images, check_train_config, fingerprint,
                       require_evaluable)
from .ssd.task import SSD_LR, SSDTargets, SSDTrainingLoss, check_settings, ssd_arch


@dataclass
class TrainConfig:
    """Every setting of a run. Those in RESULT_SETTINGS must match when resuming."""

    data: str | list | None = None   # dataset root(s), VOC, COCO or YOLO layout; None: the built-in one
    train_split: str | None = None   # None: train, else trainval (data/splits.py)
    val_split: str | None = None     # None: val, else 10 % of the training split held out
    test_split: str = "test"         # tested on by every root that has it
    model: str = "reduced"           # reduced | fast | yolo | ssd (minidet.models.ssd_lite)
    input_size: int = 112            # reduced only (fast and yolo take 448)
    width: float = 0.25              # reduced only
    # reduced only: "conv" (a 1×1 convolution shared by all cells, YOLO v2's head) or "fc"
    # (Fast YOLO's fully connected head); None: "conv" for reduced, "fc" for fast and yolo.
    # Measured on the built-in dataset, 2-core CPU, same everything else
    # (benchmarks/head_study.py): val mAP@0.5 after 8 epochs 0.34 with "conv", 0.02 with
    # "fc"; the best "fc" recipe we found (--head fc --pretrain-epochs 3 --epochs 25
    # --warmup-epochs 5) reaches 0.19 on the test split in 9 minutes.
    head: str | None = None
    # None: enough epochs for DEFAULT_STEPS optimizer steps (a small dataset gets as many
    # updates as the built-in one); the run records the number it used.
    epochs: int | None = None
    batch_size: int = 32
    # Peak learning rate (after warm-up); None: 1e-2, or SSD_LR for ssd (minidet/ssd/task.py says why).
    lr: float | None = None
    warmup_epochs: float = 2.0       # linear warm-up from lr/100
    momentum: float = 0.9
    weight_decay: float = 5e-4
    seed: int = 0
    augment: bool = True
    # Departures from the paper, measured on the built-in dataset (2-core CPU): with the
    # fully connected head at the paper's lambda_coord = 5 the class loss never left its
    # prior (test mAP 0.040); at 1 it was 0.100, and with 3 epochs of classification
    # pretraining of the convolutions (the paper pretrains them on ImageNet) 0.193.
    pretrain_epochs: float = 0.0     # cell-classification pretraining of the convolutions (pretrain.py)
    lambda_coord: float = 1.0        # weight of the coordinate terms (the paper: 5)
    device: str = "auto"             # auto | cpu | cuda
    workers: int = 2
    out: str | None = None           # run directory; default runs/<time>

    def __post_init__(self):
        if self.lr is None:
            self.lr = SSD_LR if self.model == "ssd" else 1e-2


# What must be the same for a resumed run to continue the same training.
RESULT_SETTINGS = ("data", "train_split", "val_split", "model", "input_size", "width", "head", "epochs",
                   "batch_size", "lr", "warmup_epochs", "momentum", "weight_decay", "seed", "augment",
                   "pretrain_epochs", "lambda_coord")


def head_for(config: TrainConfig) -> str:
    """The head the run uses: `config.head`, or its default for the model (see TrainConfig).
    None for SSD, whose predictors are part of its architecture (its YOLO-only settings are refused)."""
    if config.model == "ssd":
        check_settings(config)
        return None
    head = config.head if config.head is not None else ("conv" if config.model == "reduced" else "fc")
    if head not in ("fc", "conv"):
        raise MinidetError(f"--head must be fc or conv, got {head!r}")
    if head == "conv" and config.model != "reduced":
        raise MinidetError(f"--head conv applies to --model reduced; the paper's {config.model!r} model "
                           f"keeps its fully connected head")
    return head


def model_for(config: TrainConfig, num_classes: int):
    if config.model == "reduced":
        arch = {"name": "reduced_fast_yolo", "kwargs": dict(input_size=config.input_size, width=config.width,
                                                            S=7, B=2, C=num_classes, seed=config.seed,
                                                            head=head_for(config))}
    elif config.model == "fast":
        arch = {"name": "fast_yolo", "kwargs": dict(S=7, B=2, C=num_classes, seed=config.seed)}
    elif config.model == "yolo":
        arch = {"name": "yolo_v1", "kwargs": dict(S=7, B=2, C=num_classes, seed=config.seed)}
    elif config.model == "ssd":
        arch = ssd_arch(config, num_classes)
    else:
        raise MinidetError(f"--model must be reduced, fast, yolo or ssd, got {config.model!r}")
    try:
        return build(arch)
    except ValueError as e:
        raise MinidetError(str(e)) from None


def dataset_roots(config: TrainConfig) -> list:
    """The run's dataset roots (`--data`, repeatable), or the built-in dataset."""
    return [Path(d) for d in ([config.data] if isinstance(config.data, str) else config.data)] \
        if config.data else [builtin_dataset()]


def loss_and_targets(config: TrainConfig, model):
    """The loss of `model` and the loader's `target_fn(boxes, labels)` for one image."""
    if config.model == "ssd":
        return SSDTrainingLoss(), SSDTargets(model.priors)
    return (YoloLoss(S=model.S, B=model.B, C=model.C, lambda_coord=config.lambda_coord),
            partial(encode_targets, S=model.S, C=model.C))


def dataset_root(config: TrainConfig) -> Path:
    return dataset_roots(config)[0]


DEFAULT_STEPS = 20 * (2000 // 32)  # the default run: 20 epochs of the built-in 2000 images at batch 32
SMALL_TRAIN_SPLIT = 1000           # images; below this, a run from scratch is warned about


def epochs_for(config: TrainConfig, steps_per_epoch: int) -> int:
    """config.epochs, or (None) the epochs that make at least DEFAULT_STEPS optimizer steps."""
    return config.epochs if config.epochs is not None else max(1, math.ceil(DEFAULT_STEPS / steps_per_epoch))


def resolved_data(data):
    """The dataset path(s) a checkpoint records: absolute, so a resume from elsewhere finds them."""
    if not data:
        return data
    if isinstance(data, str):
        return str(Path(data).resolve())
    return [str(Path(d).resolve()) for d in data]


def schedule_for(config: TrainConfig, steps_per_epoch: int) -> WarmupCosineLR:
    """The learning rate per step: linear warm-up from lr/100 over `warmup_epochs`, then a
    cosine decay to lr/100 at the last step.

    The paper warms up from lr/10; trained from scratch without batch norm, the network
    with its fully connected head diverged within 20 steps that way at lr 1e-2 (the output
    layer and the 12544-input fully connected layer take huge relative steps early on).
    From lr/100 it stayed stable in every run we made: over 5 epochs with the fully
    connected head, over 2 with the convolutional one (the default)."""
    total = steps_per_epoch * config.epochs
    warmup = int(round(config.warmup_epochs * steps_per_epoch))
    return WarmupCosineLR(config.lr, config.lr / 100, warmup, max(total, warmup + 1), final_lr=config.lr / 100)


def _dropout_layers(model):
    return [layer for layer in model.layers if isinstance(layer, Dropout)]


def _finite(model) -> bool:
    return all(bool(get_array_module(p[k]).isfinite(p[k]).all()) for _, p, _, k in model.named_parameters())


def _check_resume(config: TrainConfig, saved: dict, path, keys=RESULT_SETTINGS):
    # Checkpoints from before the `head` setting all had the fully connected head.
    saved = {"head": "fc", **saved}
    saved["data"] = resolved_data(saved.get("data"))  # checkpoints that stored it relative
    for key in keys:
        if saved.get(key) != getattr(config, key):
            raise CheckpointError(f"--resume {path}: the run was trained with {key}={saved.get(key)!r}, "
                                  f"this run asks for {key}={getattr(config, key)!r}")


def config_from_checkpoint(path) -> dict:
    """The TrainConfig settings stored in a training checkpoint (for --resume defaults)."""
    _, meta = load_checkpoint(path)
    if "config" not in meta:
        raise CheckpointError(f"{path}: not a training checkpoint (no settings recorded); cannot resume")
    return meta["config"]


def train(config: TrainConfig, resume=None, log=print, progress: bool = True, force: bool = False) -> dict:
    """Run (or resume) a training; returns {"test_mAP", "val_mAP", "run_dir", ...}.

    Nothing is written before every check has passed (settings, datasets, resume). The run
    directory must not hold another run's files unless `force` (a resumed run may write
    into its own)."""
    from tqdm import tqdm

    check_train_config(config)
    if resume is not None:  # another model first: its other settings (--head) would only confuse
        _check_resume(config, config_from_checkpoint(resume), resume, keys=("model",))
    # What the checkpoint records and --resume checks: the resolved head and dataset path.
    config = replace(config, head=head_for(config), data=resolved_data(config.data))
    device = resolve_device(config.device)
    root = dataset_root(config)
    chosen = training_splits(dataset_roots(config), config.train_split, config.val_split, config.test_split)
    for note in chosen.notes:
        log(note)
    train_set, val_set = chosen.train, chosen.val
    splits = {"train": train_set, "val": val_set}
    if chosen.test is not None:
        splits["test"] = chosen.test
    for split in ("val", "test"):
        if split in splits:
            require_evaluable(splits[split])
    data_print = fingerprint(splits)
    classes = list(train_set.classes)
    model = model_for(config, len(classes))
    size = model.input_size
    steps_per_epoch = len(train_set) // config.batch_size
    if steps_per_epoch == 0:
        raise MinidetError(f"{root}: the train split has {len(train_set)} images, fewer than one batch "
                           f"of {config.batch_size}")
    config = replace(config, epochs=epochs_for(config, steps_per_epoch))
    if len(train_set) < SMALL_TRAIN_SPLIT and resume is None:
        # On stdout with the run's other lines: stderr's one line is kept for errors.
        log(f"warning: the training split has {len(train_set)} images: trained from scratch (no pretrained "
            f"weights), a detector learns little from so few; expect a low mAP. The run makes "
            f"{config.epochs * steps_per_epoch} optimizer steps ({config.epochs} epochs)")
    schedule = schedule_for(config, steps_per_epoch)
    opt = SGD(model, lr=schedule(0), momentum=config.momentum, weight_decay=config.weight_decay)
    loss_fn, target_fn = loss_and_targets(config, model)
    start_epoch, step, history, best_map = 0, 0, [], -1.0

    if resume is not None:
        # The settings first: "trained with head='conv'" says more than an architecture mismatch.
        _check_resume(config, config_from_checkpoint(resume), resume)
        model, meta = load_checkpoint(resume, expect_arch=model.arch)
        check_training_state(meta, resume)
        check_fingerprint(meta.get("dataset"), meta.get("classes"), data_print, root, resume)
        opt = SGD(model, lr=schedule(0), momentum=config.momentum, weight_decay=config.weight_decay)
        try:
            opt.load_state_dict(meta["optimizer"])
            start_epoch, step = int(meta["epoch"]), int(meta["step"])
            history, best_map = list(meta["history"]), float(meta["best_map"])
            for layer, state in zip(_dropout_layers(model), meta["dropout_rng"]):
                layer.rng.bit_generator.state = state
        except (KeyError, ValueError, TypeError) as e:
            raise CheckpointError(f"{resume}: damaged training state ({type(e).__name__}: {e}); "
                                  f"cannot resume") from None
        out = config.out or str(Path(resume).parent)
    else:
        out = config.out or f"runs/{time.strftime('%Y%m%d-%H%M%S')}"
    out_dir = Path(out)
    own_dir = resume is not None and out_dir.resolve() == Path(resume).resolve().parent
    if out_dir.exists() and not out_dir.is_dir():
        raise MinidetError(f"--out {out_dir}: exists and is not a directory")
    if not force and not own_dir:
        for name in Run.FILES:
            refuse_existing(out_dir / name, force, " (a file of another run in --out)")
    for split, dataset in splits.items():
        check_images(dataset, config.workers)
    run = Run(out)
    if resume is not None and not run.best.exists():
        best_map = recover_best(run, resume, history, best_map, log)
    model.to(device)

    if resume is None and config.pretrain_epochs > 0:
        # Its own shuffles and augmentations (seed + 1): the detection epochs stay those of a
        # run without pretraining. Overflow is reported by the loss check, not as warnings.
        with BatchLoader(train_set, config.batch_size, size, augment=config.augment, shuffle=True,
                         drop_last=True, seed=config.seed + 1, target_fn=target_fn, workers=config.workers,
                         device=device) as loader, np.errstate(over="ignore", invalid="ignore"):
            pretrain(model, loader, config.pretrain_epochs, config.lr, device, log=log, seed=config.seed,
                     momentum=config.momentum, weight_decay=config.weight_decay)
    train_loader = BatchLoader(train_set, config.batch_size, size, augment=config.augment, shuffle=True,
                               drop_last=True, seed=config.seed, target_fn=target_fn, workers=config.workers,
                               device=device)
    train_loader.epoch = start_epoch
    val_loader = BatchLoader(val_set, config.batch_size, size, workers=config.workers)
    settings = asdict(config)
    log(f"training {model.arch['name']} ({model.num_parameters() / 1e6:.2f} M parameters, input {size}) "
        f"on {root} ({len(train_set)} train / {len(val_set)} val images) on {device}; run directory {run.dir}")
    t_start = time.perf_counter()
    # A diverging run overflows: the loss check below reports it in one line, not NumPy's warnings.
    errstate = np.seterr(over="ignore", invalid="ignore")
    try:
        for epoch in range(start_epoch, config.epochs):
            model.train()
            t0 = time.perf_counter()
            sums = dict(loss=0.0)
            bar = tqdm(train_loader, desc=f"epoch {epoch + 1}/{config.epochs}", leave=False,
                       disable=not progress, mininterval=1.0, dynamic_ncols=True)
            for batch in bar:
                opt.lr = schedule(step)
                pred = model.forward(to_device(batch.images, device))
                value = loss_fn.forward(pred, to_device(batch.targets, device))
                if not math.isfinite(value):
                    raise TrainingDiverged(
                        f"the loss became {value} at epoch {epoch + 1}, step {step} (lr {opt.lr:.3g}); "
                        f"stopped. The last good checkpoint is {run.last if run.last.exists() else 'none yet'}; "
                        f"try a lower --lr")
                grad = loss_fn.backward()   # SSD: (dloc, dconf)
                model.backward(*grad) if isinstance(grad, tuple) else model.backward(grad)
                opt.step()
                step += 1
                sums["loss"] += value
                for k, v in loss_fn.components.items():
                    sums[k] = sums.get(k, 0.0) + v
                bar.set_postfix(loss=f"{value:.3f}", **{k: f"{v:.3f}" for k, v in loss_fn.components.items()},
                                refresh=False)
            bar.close()
            if not _finite(model):  # the last step of the epoch blew up: keep last.npz as it is
                raise TrainingDiverged(
                    f"the weights became non-finite at epoch {epoch + 1}, step {step} (lr {opt.lr:.3g}); "
                    f"stopped. The last good checkpoint is {run.last if run.last.exists() else 'none yet'}; "
                    f"try a lower --lr")
            n = len(train_loader)
            val, _, _ = evaluate_loader(model, val_loader, device)
            record = {"epoch": epoch + 1, "step": step, "lr": opt.lr, **{k: v / n for k, v in sums.items()},
                      "val_mAP": val["mAP"], "seconds": time.perf_counter() - t0}
            history.append(record)
            improved = val["mAP"] > best_map
            best_map = max(best_map, val["mAP"])
            meta = dict(classes=classes, config=settings, dataset=data_print, epoch=epoch + 1, step=step,
                        history=history,
                        best_map=best_map, optimizer=opt.state_dict(),
                        dropout_rng=[layer.rng.bit_generator.state for layer in _dropout_layers(model)])
            if improved:
                save(model, run.best, **meta)
            save(model, run.last, **meta)
            run.write_metrics(history, {"splits": chosen.record})
            parts = ", ".join(f"{k} {record[k]:.3f}" for k in loss_fn.components)
            log(f"epoch {epoch + 1}/{config.epochs}: loss {record['loss']:.3f} ({parts}), "
                f"val mAP@0.5 {val['mAP']:.3f}{' (best)' if improved else ''}, {record['seconds']:.0f} s")
    finally:
        np.seterr(**errstate)
        train_loader.close()
        val_loader.close()
    return finish(run, history, classes, splits, config, device, time.perf_counter() - t_start, log,
                  chosen.record)


def finish(run: Run, history, classes, splits, config, device, seconds, log, record=None) -> dict:
    """Test mAP of the best model, plots and a sheet of detections (each file written atomically).
    `splits` maps "train", "val" and (when there is one) "test" to their datasets; `record` is
    what metrics.json says of how they were chosen."""
    from .visualize import detection_sheet, plot_curves

    model, _ = load_checkpoint(run.best)
    model.to(device)
    result = {"run_dir": str(run.dir), "train_seconds": seconds,
              "val_mAP": max(h["val_mAP"] for h in history) if history else None}
    if record is not None:
        result["splits"] = record
    if "test" in splits:
        with BatchLoader(splits["test"], config.batch_size, model.input_size, workers=config.workers) as loader:
            test, _, _ = evaluate_loader(model, loader, device)
        result["test_mAP"] = test["mAP"]
        result["test_AP"] = {classes[c]: ap for c, ap in test["AP"].items()}
    with BatchLoader(splits["val"], 16, model.input_size, workers=1) as loader:
        batch = next(iter(loader))
    dets = predict(model, batch.images, device)
    with atomic_write(run.dir / "detections.png") as tmp, open(tmp, "wb") as f:
        detection_sheet(batch.images, dets, classes).save(f, format="PNG")
    if history:
        with atomic_write(run.dir / "loss.png") as t1, atomic_write(run.dir / "map.png") as t2, \
                open(t1, "wb") as f1, open(t2, "wb") as f2:
            plot_curves(history, f1, f2)
    run.write_metrics(history, {k: v for k, v in result.items() if k != "run_dir"})
    return result


def describe_result(result: dict) -> str:
    lines = []
    if "test_mAP" in result:
        lines.append(f"test mAP@0.5 (VOC all-point): {result['test_mAP']:.3f}")
    if result.get("val_mAP") is not None:
        lines.append(f"best val mAP@0.5: {result['val_mAP']:.3f}")
    lines.append(f"run files (checkpoints, metrics, loss.png, map.png, detections.png): {result['run_dir']}")
    return "\n".join(lines)


__all__ = ["TrainConfig", "TrainingDiverged", "train", "config_from_checkpoint", "describe_result",
           "RESULT_SETTINGS", "model_for", "head_for", "schedule_for", "loss_and_targets"]
