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

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from .backend import get_array_module, resolve_device
from .data import BatchLoader
from .data.splits import training_splits
from .errors import CheckpointError, MinidetError, TrainingDiverged
from .families import family_for
from .files import atomic_write, refuse_existing
from .inference import evaluate_loader, predict
from .layers import Dropout
from .loop import Steps
from .models import load_checkpoint, save
from .optim import SGD
from .pretrain import pretrain
from .rundir import Run, check_resume, check_training_state, config_from_checkpoint, recover_best
from .train_config import (DEFAULT_STEPS, RESULT_SETTINGS, SMALL_TRAIN_SPLIT, TrainConfig, dataset_root,
                           dataset_roots, epochs_for, head_for, loss_and_targets, model_for, resolved_data,
                           schedule_for)
from .validate import (check_fingerprint, check_images, check_train_config, fingerprint,
                       require_evaluable)


def _dropout_layers(model):
    return [layer for layer in model.layers if isinstance(layer, Dropout)]


def _loss_rng(s) -> np.random.Generator | None:
    """The generator a sampling loss draws from (Faster R-CNN's anchors and RoIs), or None."""
    return getattr(s.steps.loss_fn, "rng", None)


def _finite(model) -> bool:
    return all(bool(get_array_module(p[k]).isfinite(p[k]).all()) for _, p, _, k in model.named_parameters())


@dataclass
class Session:
    """A run between its setup and its end: the settings, data, model and training state."""

    config: TrainConfig
    device: str
    chosen: object            # data.splits.training_splits' answer (train, val, test, record)
    splits: dict              # "train", "val" and (when there is one) "test" -> dataset
    data_print: dict          # validate.fingerprint of the splits, recorded in checkpoints
    model: object
    opt: SGD
    steps: Steps
    target_fn: object
    run: Run | None = None
    start_epoch: int = 0
    history: list = None
    best_map: float = -1.0

    @property
    def classes(self) -> list:
        return list(self.chosen.train.classes)

    def last_good(self) -> str:
        return f"The last good checkpoint is {self.run.last if self.run.last.exists() else 'none yet'}"


def _read_data(config: TrainConfig, log):
    """The chosen splits, each evaluated split checked, and their fingerprint."""
    chosen = training_splits(dataset_roots(config), config.train_split, config.val_split, config.test_split)
    for note in chosen.notes:
        log(note)
    splits = {"train": chosen.train, "val": chosen.val}
    if chosen.test is not None:
        splits["test"] = chosen.test
    for split in ("val", "test"):
        if split in splits:
            require_evaluable(splits[split])
    return chosen, splits, fingerprint(splits)


def _restore(s: Session, resume, schedule):
    """The model, optimizer and training state of checkpoint `resume` into `s`."""
    # The settings first: "trained with head='conv'" says more than an architecture mismatch.
    check_resume(s.config, config_from_checkpoint(resume), resume)
    s.model, meta = load_checkpoint(resume, expect_arch=s.model.arch)
    check_training_state(meta, resume)
    s.steps.loss_fn, s.target_fn = loss_and_targets(s.config, s.model)  # a loss may hold the model
    check_fingerprint(meta.get("dataset"), meta.get("classes"), s.data_print, dataset_root(s.config), resume)
    s.opt = SGD(s.model, lr=schedule(0), momentum=s.config.momentum, weight_decay=s.config.weight_decay)
    try:
        s.opt.load_state_dict(meta["optimizer"])
        s.start_epoch, s.steps.step = int(meta["epoch"]), int(meta["step"])
        s.history, s.best_map = list(meta["history"]), float(meta["best_map"])
        for layer, state in zip(_dropout_layers(s.model), meta["dropout_rng"]):
            layer.rng.bit_generator.state = state
        if _loss_rng(s) is not None:
            _loss_rng(s).bit_generator.state = meta["loss_rng"]
    except (KeyError, ValueError, TypeError) as e:
        raise CheckpointError(f"{resume}: damaged training state ({type(e).__name__}: {e}); "
                              f"cannot resume") from None
    s.steps.net, s.steps.opt = s.model, s.opt


def _open_run(s: Session, resume, force: bool, log) -> Run:
    """The run directory, after the last checks (another run's files, every image readable)."""
    config = s.config
    out = config.out or (str(Path(resume).parent) if resume is not None
                         else f"runs/{time.strftime('%Y%m%d-%H%M%S')}")
    out_dir = Path(out)
    own_dir = resume is not None and out_dir.resolve() == Path(resume).resolve().parent
    if out_dir.exists() and not out_dir.is_dir():
        raise MinidetError(f"--out {out_dir}: exists and is not a directory")
    if not force and not own_dir:
        for name in Run.FILES:
            refuse_existing(out_dir / name, force, " (a file of another run in --out)")
    for dataset in s.splits.values():
        check_images(dataset, config.workers)
    run = Run(out)
    if resume is not None and not run.best.exists():
        s.best_map = recover_best(run, resume, s.history, s.best_map, log)
    return run


def setup(config: TrainConfig, resume, log, force: bool) -> Session:
    """Every check, then the run directory: the session `train` runs. Nothing is written
    before every check has passed (settings, datasets, resume)."""
    check_train_config(config)
    if resume is not None:  # another model first: its other settings (--head) would only confuse
        check_resume(config, config_from_checkpoint(resume), resume, keys=("model",))
    # What the checkpoint records and --resume checks: the resolved settings and dataset path.
    family = family_for(config.model)
    config = replace(config, **family.resolve(config), data=resolved_data(config.data))
    device = resolve_device(config.device)
    chosen, splits, data_print = _read_data(config, log)
    train_set = chosen.train
    model = model_for(config, len(train_set.classes))
    steps_per_epoch = len(train_set) // config.batch_size
    if steps_per_epoch == 0:
        raise MinidetError(f"{dataset_root(config)}: the train split has {len(train_set)} images, fewer than "
                           f"one batch of {config.batch_size}")
    config = replace(config, epochs=epochs_for(config, steps_per_epoch))
    if len(train_set) < SMALL_TRAIN_SPLIT and resume is None:
        # On stdout with the run's other lines: stderr's one line is kept for errors.
        log(f"warning: the training split has {len(train_set)} images: trained from scratch (no pretrained "
            f"weights), a detector learns little from so few; expect a low mAP. The run makes "
            f"{config.epochs * steps_per_epoch} optimizer steps ({config.epochs} epochs)")
    schedule = schedule_for(config, steps_per_epoch)
    opt = SGD(model, lr=schedule(0), momentum=config.momentum, weight_decay=config.weight_decay)
    loss_fn, target_fn = loss_and_targets(config, model)
    s = Session(config, device, chosen, splits, data_print, model, opt,
                Steps(model, loss_fn, opt, schedule, device), target_fn, history=[])
    if resume is not None:
        _restore(s, resume, schedule)
    s.run = _open_run(s, resume, force, log)
    s.model.to(device)
    return s


def _pretrain(s: Session, log):
    """The cell-classification pretraining of the convolutions (`config.pretrain_epochs`)."""
    config = s.config
    # Its own shuffles and augmentations (seed + 1): the detection epochs stay those of a
    # run without pretraining. Overflow is reported by the loss check, not as warnings.
    with BatchLoader(s.chosen.train, config.batch_size, s.model.input_size, augment=config.augment, shuffle=True,
                     drop_last=True, seed=config.seed + 1, target_fn=s.target_fn, workers=config.workers,
                     device=s.device) as loader, np.errstate(over="ignore", invalid="ignore"):
        pretrain(s.model, loader, config.pretrain_epochs, config.lr, s.device, log=log, seed=config.seed,
                 momentum=config.momentum, weight_decay=config.weight_decay)


def run_epoch(s: Session, loader, epoch: int, progress: bool) -> dict:
    """One pass of `loader` in training mode; the sums of the loss and its components."""
    from tqdm import tqdm

    s.model.train()
    sums = dict(loss=0.0)
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{s.config.epochs}", leave=False,
               disable=not progress, mininterval=1.0, dynamic_ncols=True)

    def context(step, lr):
        return (f"epoch {epoch + 1}, step {step} (lr {lr:.3g}); stopped. {s.last_good()}; "
                f"try a lower --lr")

    for batch in bar:
        value = s.steps.run(batch, context)
        sums["loss"] += value
        components = s.steps.loss_fn.components
        for k, v in components.items():
            sums[k] = sums.get(k, 0.0) + v
        bar.set_postfix(loss=f"{value:.3f}", **{k: f"{v:.3f}" for k, v in components.items()}, refresh=False)
    bar.close()
    if not _finite(s.model):  # the last step of the epoch blew up: keep last.npz as it is
        raise TrainingDiverged(
            f"the weights became non-finite at epoch {epoch + 1}, step {s.steps.step} (lr {s.opt.lr:.3g}); "
            f"stopped. {s.last_good()}; try a lower --lr")
    return sums


def end_epoch(s: Session, val_loader, epoch: int, sums: dict, batches: int, seconds_since: float, log):
    """Validation, the metrics record, the checkpoints (best.npz on a strict improvement)."""
    val, _, _ = evaluate_loader(s.model, val_loader, s.device)
    record = {"epoch": epoch + 1, "step": s.steps.step, "lr": s.opt.lr,
              **{k: v / batches for k, v in sums.items()},
              "val_mAP": val["mAP"], "seconds": time.perf_counter() - seconds_since}
    s.history.append(record)
    improved = val["mAP"] > s.best_map
    s.best_map = max(s.best_map, val["mAP"])
    meta = dict(classes=s.classes, config=asdict(s.config), dataset=s.data_print, epoch=epoch + 1,
                step=s.steps.step, history=s.history, best_map=s.best_map, optimizer=s.opt.state_dict(),
                dropout_rng=[layer.rng.bit_generator.state for layer in _dropout_layers(s.model)])
    if _loss_rng(s) is not None:
        meta["loss_rng"] = _loss_rng(s).bit_generator.state
    if improved:
        save(s.model, s.run.best, **meta)
    save(s.model, s.run.last, **meta)
    s.run.write_metrics(s.history, {"splits": s.chosen.record})
    parts = ", ".join(f"{k} {record[k]:.3f}" for k in s.steps.loss_fn.components)
    log(f"epoch {epoch + 1}/{s.config.epochs}: loss {record['loss']:.3f} ({parts}), "
        f"val mAP@0.5 {val['mAP']:.3f}{' (best)' if improved else ''}, {record['seconds']:.0f} s")


def train(config: TrainConfig, resume=None, log=print, progress: bool = True, force: bool = False) -> dict:
    """Run (or resume) a training; returns {"test_mAP", "val_mAP", "run_dir", ...}.

    Nothing is written before every check has passed (settings, datasets, resume). The run
    directory must not hold another run's files unless `force` (a resumed run may write
    into its own)."""
    s = setup(config, resume, log, force)
    config, size = s.config, s.model.input_size
    if resume is None and config.pretrain_epochs > 0:
        _pretrain(s, log)
    train_loader = BatchLoader(s.chosen.train, config.batch_size, size, augment=config.augment, shuffle=True,
                               drop_last=True, seed=config.seed, target_fn=s.target_fn, workers=config.workers,
                               device=s.device)
    train_loader.epoch = s.start_epoch
    val_loader = BatchLoader(s.chosen.val, config.batch_size, size, workers=config.workers)
    log(f"training {s.model.arch['name']} ({s.model.num_parameters() / 1e6:.2f} M parameters, input {size}) "
        f"on {dataset_root(config)} ({len(s.chosen.train)} train / {len(s.chosen.val)} val images) on "
        f"{s.device}; run directory {s.run.dir}")
    t_start = time.perf_counter()
    # A diverging run overflows: the loss check reports it in one line, not NumPy's warnings.
    errstate = np.seterr(over="ignore", invalid="ignore")
    try:
        for epoch in range(s.start_epoch, config.epochs):
            t0 = time.perf_counter()
            sums = run_epoch(s, train_loader, epoch, progress)
            end_epoch(s, val_loader, epoch, sums, len(train_loader), t0, log)
    finally:
        np.seterr(**errstate)
        train_loader.close()
        val_loader.close()
    return finish(s.run, s.history, s.classes, s.splits, config, s.device, time.perf_counter() - t_start,
                  s.chosen.record)


def finish(run: Run, history, classes, splits, config, device, seconds, record=None) -> dict:
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
           "RESULT_SETTINGS", "DEFAULT_STEPS", "model_for", "head_for", "schedule_for", "loss_and_targets",
           "epochs_for", "dataset_root"]
