"""Nothing a user has is lost, and every bad input fails before the work starts, in one line.

Each test here is one fault a user met (issue 10): an overwritten dataset, a run that
trained for an hour and then failed on its test split, a resume that quietly trained on
another dataset, a traceback instead of the one-line `minidet: error: ...`.
"""
from __future__ import annotations

import errno
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import minidet.train as train_module
from minidet.data import generate
from minidet.models import load_checkpoint
from minidet.train import TrainConfig, train

from helpers import Stop, assert_one_line_error, run, stop_after_epoch, tiny_config

pytestmark = pytest.mark.usefixtures("isolated_cache")


def files(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(Path(root).rglob("*")) if p.is_file()}


def split_names(root, split):
    return (Path(root) / "ImageSets" / "Main" / f"{split}.txt").read_text().split()


def quiet(line):
    pass


# --- data synth never overwrites what it did not write ------------------------------------


def test_synth_refuses_a_non_empty_directory(tmp_path, capsys):
    """A VOC dataset also names its images 000001...: synth into it is refused, nothing changes."""
    voc = generate(tmp_path / "voc", images=12, seed=7)
    (voc / "synth.json").unlink()  # someone's dataset, not a synthetic one
    (voc / "notes.txt").write_text("mine")
    before = files(voc)
    code, _, err = run(capsys, "data", "synth", voc, "--images", "8")
    assert_one_line_error(code, err, voc, "not empty", "--force")
    assert files(voc) == before
    code, _, err = run(capsys, "data", "synth", voc, "--images", "8", "--force")
    assert_one_line_error(code, err, voc / "Annotations" / "000001.xml", "not written by")
    assert files(voc) == before
    assert [p.name for p in tmp_path.iterdir()] == ["voc"]  # no staging directory left


def test_synth_force_replaces_only_its_own_files(tmp_path, capsys):
    out = tmp_path / "synth"
    code, _, err = run(capsys, "data", "synth", out, "--images", "24", "--seed", "1")
    assert code == 0, err
    (out / "notes.txt").write_text("mine")
    (out / "JPEGImages" / "extra.png").write_bytes(b"user's")
    code, _, err = run(capsys, "data", "synth", out, "--images", "12", "--seed", "2", "--force")
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine"
    assert (out / "JPEGImages" / "extra.png").read_bytes() == b"user's"
    fresh = files(generate(tmp_path / "fresh", images=12, seed=2))
    now = files(out)
    assert {k: v for k, v in now.items() if k in fresh} == fresh  # exactly the new dataset
    assert set(now) - set(fresh) == {"notes.txt", "JPEGImages/extra.png"}  # 000013..000024 removed


# --- detect: distinct outputs, no silent replacement ------------------------------------


def _png(path, colour):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), colour).save(path)
    return path


def test_detect_same_stem_twice_writes_two_files(tmp_path, capsys, tiny_run):
    a, b = _png(tmp_path / "a" / "img.png", (255, 0, 0)), _png(tmp_path / "b" / "img.png", (0, 0, 255))
    out = tmp_path / "dets"
    code, stdout, err = run(capsys, "detect", "--weights", tiny_run[0] / "best.npz", a, b, "--out", out)
    assert code == 0, err
    written = sorted(p.name for p in out.iterdir())
    assert written == ["img-2_detections.png", "img_detections.png"]
    first = np.asarray(Image.open(out / "img_detections.png"))
    second = np.asarray(Image.open(out / "img-2_detections.png"))
    assert first[15, 20].tolist() == [255, 0, 0] and second[15, 20].tolist() == [0, 0, 255]
    assert f"{a}: " in stdout and f"{b}: " in stdout


def test_detect_refuses_to_replace_an_output_and_an_out_that_is_a_file(tmp_path, capsys, tiny_run):
    image = _png(tmp_path / "img.png", (0, 255, 0))
    weights = tiny_run[0] / "best.npz"
    out = tmp_path / "dets"
    out.mkdir()
    earlier = out / "img_detections.png"
    earlier.write_bytes(b"an earlier result")
    code, _, err = run(capsys, "detect", "--weights", weights, image, "--out", out)
    assert_one_line_error(code, err, earlier, "--force")
    assert earlier.read_bytes() == b"an earlier result"
    code, _, err = run(capsys, "detect", "--weights", weights, image, "--out", out, "--force")
    assert code == 0, err
    assert Image.open(earlier).format == "PNG"
    a_file = tmp_path / "a-file"
    a_file.write_text("keep")
    code, _, err = run(capsys, "detect", "--weights", weights, image, "--out", a_file)
    assert_one_line_error(code, err, a_file, "not a directory")
    code, _, err = run(capsys, "detect", "--weights", weights, image, "--out", a_file / "sub")
    assert_one_line_error(code, err, a_file)
    assert a_file.read_text() == "keep"


def test_eval_json_is_not_overwritten_without_force(tmp_path, capsys, tiny_voc, tiny_run):
    target = tmp_path / "result.json"
    target.write_text("keep")
    code, _, err = run(capsys, "eval", "--weights", tiny_run[0] / "best.npz", "--data", tiny_voc,
                       "--json", target)
    assert_one_line_error(code, err, target, "--force")
    assert target.read_text() == "keep"


# --- every split and every option is checked before the first step ---------------------


def _break_test_split(root, how):
    name = split_names(root, "test")[0]
    if how == "unknown class":
        xml = root / "Annotations" / f"{name}.xml"
        text = xml.read_text()
        first = text.split("<name>")[1].split("</name>")[0]
        xml.write_text(text.replace(f"<name>{first}</name>", "<name>unicorn</name>", 1))
        return xml
    jpg = root / "JPEGImages" / f"{name}.jpg"
    jpg.write_bytes(jpg.read_bytes()[:300])  # a truncated JPEG
    return jpg


@pytest.mark.parametrize("how", ["unknown class", "truncated image"])
def test_a_bad_test_split_stops_the_run_before_training(tmp_path, capsys, tiny_voc, tiny_train_args, how):
    root = Path(shutil.copytree(tiny_voc, tmp_path / "voc"))
    bad = _break_test_split(root, how)
    code, out, err = run(capsys, "train", "--data", root, *tiny_train_args, "--out", tmp_path / "run")
    assert_one_line_error(code, err, bad)
    assert not (tmp_path / "run").exists()
    assert not re.search(r"epoch \d+/\d+", out)  # no epoch ran (a warning may name epochs)


def test_a_corrupt_validation_image_stops_the_run_before_training(tmp_path, capsys, tiny_voc, tiny_train_args):
    root = Path(shutil.copytree(tiny_voc, tmp_path / "voc"))
    jpg = root / "JPEGImages" / f"{split_names(root, 'val')[1]}.jpg"
    jpg.write_bytes(b"not an image at all")
    code, _, err = run(capsys, "train", "--data", root, *tiny_train_args, "--out", tmp_path / "run")
    assert_one_line_error(code, err, jpg, "cannot decode")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("split", ["val", "test"])
def test_an_empty_split_says_there_is_nothing_to_evaluate(tmp_path, capsys, tiny_voc, tiny_train_args, split):
    root = Path(shutil.copytree(tiny_voc, tmp_path / "voc"))
    split_file = root / "ImageSets" / "Main" / f"{split}.txt"
    split_file.write_text("")
    code, _, err = run(capsys, "train", "--data", root, *tiny_train_args, "--out", tmp_path / "run")
    assert_one_line_error(code, err, split_file, "nothing to evaluate")
    assert not (tmp_path / "run").exists()


def test_eval_on_an_empty_split_says_there_is_nothing_to_evaluate(tmp_path, capsys, tiny_voc, tiny_run):
    root = Path(shutil.copytree(tiny_voc, tmp_path / "voc"))
    (root / "ImageSets" / "Main" / "empty.txt").write_text("\n")
    code, out, err = run(capsys, "eval", "--weights", tiny_run[0] / "best.npz", "--data", root, "--split", "empty")
    assert_one_line_error(code, err, "empty.txt", "nothing to evaluate")
    assert "mAP" not in out


@pytest.mark.parametrize("flag, value", [("--lr", "nan"), ("--lr", "inf"), ("--lr", "-0.01"), ("--lr", "0"),
                                         ("--lambda-coord", "nan"), ("--lambda-coord", "-1"),
                                         ("--warmup-epochs", "-1"), ("--warmup-epochs", "inf"),
                                         ("--pretrain-epochs", "-0.5"), ("--width", "nan"), ("--seed", "-1")])
def test_every_option_is_checked_before_the_run(tmp_path, capsys, tiny_voc, tiny_train_args, flag, value):
    code, out, err = run(capsys, "train", "--data", tiny_voc, *tiny_train_args, flag, value,
                         "--out", tmp_path / "run")
    assert_one_line_error(code, err, flag, value)
    assert "lower --lr" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("model", ["reduced", "fast", "yolo", "ssd"])
def test_the_defaults_pass_the_checks(model):
    """`minidet train` with no option: its defaults (epochs None: set by optimizer steps) are
    valid settings, for every model."""
    from minidet.train import TrainConfig
    from minidet.validate import check_train_config

    config = TrainConfig(model=model)
    assert config.epochs is None
    check_train_config(config)


@pytest.mark.parametrize("value", ["nan", "-0.1", "1.5"])
def test_detect_threshold_is_checked(tmp_path, capsys, tiny_run, value):
    image = _png(tmp_path / "img.png", (0, 255, 0))
    code, _, err = run(capsys, "detect", "--weights", tiny_run[0] / "best.npz", image, "--out", tmp_path / "d",
                       "--threshold", value)
    assert_one_line_error(code, err, "--threshold", value)
    assert not (tmp_path / "d").exists()


# --- resume ------------------------------------------------------------------------------


def test_resume_from_another_directory_uses_the_recorded_dataset(tmp_path, capsys, monkeypatch, tiny_voc):
    """Trained with a relative --data; resumed from a directory that holds another `ds`: the run
    continues on its own dataset (recorded as an absolute path), and the absolute --data is the
    same dataset, not a different one."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    shutil.copytree(tiny_voc, home / "ds")
    generate(elsewhere / "ds", images=24, seed=9)  # another dataset of the same name
    monkeypatch.chdir(home)
    with pytest.raises(Stop):
        train(tiny_config("ds", home / "run"), log=stop_after_epoch(1), progress=False)
    _, meta = load_checkpoint(home / "run" / "last.npz")
    assert meta["config"]["data"] == str((home / "ds").resolve())
    assert meta["dataset"] == {"classes": meta["classes"], "splits": {"train": 30, "val": 3, "test": 3}}
    monkeypatch.chdir(elsewhere)
    code, _, err = run(capsys, "train", "--resume", home / "run" / "last.npz", "--quiet", "--workers", "1",
                       "--data", "ds")  # here, "ds" is the other dataset
    assert_one_line_error(code, err, "data=", str((elsewhere / "ds").resolve()))
    code, out, err = run(capsys, "train", "--resume", home / "run" / "last.npz", "--quiet", "--workers", "1",
                         "--data", (home / "ds").resolve())
    assert code == 0, err
    assert f"on {(home / 'ds').resolve()} (30 train / 3 val images)" in out


def _one_epoch_run(tmp_path, tiny_voc, name="run"):
    root = Path(shutil.copytree(tiny_voc, tmp_path / f"{name}-data"))
    with pytest.raises(Stop):
        train(tiny_config(root, tmp_path / name), log=stop_after_epoch(1), progress=False)
    return root, tmp_path / name / "last.npz"


def test_resume_refuses_other_class_names_or_split_sizes(tmp_path, capsys, tiny_voc):
    root, last = _one_epoch_run(tmp_path, tiny_voc)
    classes = root / "classes.txt"
    names = classes.read_text().split()
    classes.write_text("\n".join(reversed(names)) + "\n")
    before = last.read_bytes()
    code, _, err = run(capsys, "train", "--resume", last, "--quiet", "--workers", "1")
    assert_one_line_error(code, err, last, "other classes", names[-1], names[0])
    classes.write_text("\n".join(names) + "\n")
    test = root / "ImageSets" / "Main" / "test.txt"
    test.write_text("\n".join(split_names(root, "test")[:2]) + "\n")
    code, _, err = run(capsys, "train", "--resume", last, "--quiet", "--workers", "1")
    assert_one_line_error(code, err, last, "test split", "2 images", "3")
    assert last.read_bytes() == before


def _scripted_val_map(monkeypatch, values):
    """The validation mAP of epoch k is values[k - 1] (the test split's is 0.5)."""
    real = train_module.evaluate_loader
    calls = {"n": 0}

    def fake(model, loader, device="cpu", **kw):
        result, dets, truths = real(model, loader, device, **kw)
        if loader.dataset.split == "val":
            result = {**result, "mAP": values[min(calls["n"], len(values) - 1)]}
            calls["n"] += 1
        return result, dets, truths

    monkeypatch.setattr(train_module, "evaluate_loader", fake)
    return calls


def test_resume_elsewhere_keeps_a_best_checkpoint(tmp_path, capsys, monkeypatch, tiny_voc):
    """Validation does not improve after the resume, and --out is another directory: the run
    ends with the test mAP of the best epoch, not "best.npz: no such checkpoint file"."""
    _scripted_val_map(monkeypatch, [0.5, 0.1])
    root, last = _one_epoch_run(tmp_path, tiny_voc)
    best_epoch1 = (last.parent / "best.npz").read_bytes()
    code, out, err = run(capsys, "train", "--resume", last, "--quiet", "--workers", "1", "--out", tmp_path / "b")
    assert code == 0, err
    assert (tmp_path / "b" / "best.npz").read_bytes() == best_epoch1
    assert "test mAP@0.5" in out
    # A copied last.npz alone, whose epoch was the best: it is its own best.
    _scripted_val_map(monkeypatch, [0.1])
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(last, lone / "last.npz")
    code, out, err = run(capsys, "train", "--resume", lone / "last.npz", "--quiet", "--workers", "1")
    assert code == 0, err
    _, meta = load_checkpoint(lone / "best.npz")
    assert meta["epoch"] == 1


def test_resume_messages_say_what_is_wrong(tmp_path, capsys, tiny_run):
    run_dir = tiny_run[0]
    code, _, err = run(capsys, "train", "--resume", run_dir, "--quiet")
    assert_one_line_error(code, err, run_dir, "is a directory", run_dir / "last.npz")
    text = tmp_path / "notes.npz"
    text.write_text("hello\n")
    code, _, err = run(capsys, "train", "--resume", text, "--quiet")
    assert_one_line_error(code, err, text, "text file")
    assert "pickle" not in err
    png = tmp_path / "picture.npz"
    Image.new("RGB", (4, 4)).save(png, format="PNG")
    code, _, err = run(capsys, "eval", "--weights", png, "--data", tmp_path)
    assert_one_line_error(code, err, png, "PNG image")
    code, _, err = run(capsys, "train", "--resume", run_dir / "last.npz", "--model", "fast", "--quiet",
                       "--out", tmp_path / "r")
    assert_one_line_error(code, err, "model='reduced'", "model='fast'")
    assert "--head" not in err


@pytest.mark.parametrize("drop", ["optimizer", "history", "best_map"])
def test_resume_from_a_hand_damaged_checkpoint(tmp_path, capsys, tiny_run, drop):
    with np.load(tiny_run[0] / "last.npz") as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(str(arrays["meta"]))
    meta.pop(drop, None)
    arrays = {k: v for k, v in arrays.items() if not k.startswith(f"state/{drop}/")}
    arrays["meta"] = np.array(json.dumps(meta))
    damaged = tmp_path / "run" / "last.npz"
    damaged.parent.mkdir()
    np.savez(damaged, **arrays)
    code, _, err = run(capsys, "train", "--resume", damaged, "--quiet", "--workers", "1")
    assert_one_line_error(code, err, damaged, drop)


# --- one line, never a traceback; nothing half-written --------------------------------------


def test_out_that_is_a_file_or_under_a_file(tmp_path, capsys, tiny_voc, tiny_train_args):
    a_file = tmp_path / "a-file"
    a_file.write_text("keep")
    for out in (a_file, a_file / "run"):
        code, _, err = run(capsys, "train", "--data", tiny_voc, *tiny_train_args, "--out", out)
        assert_one_line_error(code, err, a_file)
    assert a_file.read_text() == "keep"


def test_train_refuses_an_out_holding_another_run(tmp_path, capsys, tiny_voc, tiny_run, tiny_train_args):
    out = tmp_path / "run"
    shutil.copytree(tiny_run[0], out)
    before = files(out)
    code, _, err = run(capsys, "train", "--data", tiny_voc, *tiny_train_args, "--out", out)
    assert_one_line_error(code, err, out, "--force")
    assert files(out) == before


@pytest.mark.parametrize("errno_, reason", [(errno.ENOSPC, "No space left"), (errno.EROFS, "Read-only")])
def test_a_failed_checkpoint_write_is_one_line_and_leaves_nothing(tmp_path, capsys, monkeypatch, tiny_voc,
                                                                   tiny_train_args, errno_, reason):
    import minidet.models.checkpoint as checkpoint

    def full(f, **arrays):
        f.write(b"PK\x03\x04 partial")
        raise OSError(errno_, __import__("os").strerror(errno_))

    monkeypatch.setattr(checkpoint.np, "savez", full)
    out = tmp_path / "run"
    code, _, err = run(capsys, "train", "--data", tiny_voc, *tiny_train_args, "--out", out)
    assert_one_line_error(code, err, out / "best.npz", reason)
    assert sorted(p.name for p in out.iterdir()) == []  # no temporary, no half-written checkpoint


def test_stale_temporaries_are_removed_at_the_next_start(tmp_path, capsys, tiny_voc):
    """A SIGKILL during a checkpoint write leaves a hidden .last.npz.XXXX.tmp of several MB."""
    root, last = _one_epoch_run(tmp_path, tiny_voc)
    stale = last.parent / ".last.npz.k1ll3d.tmp"
    stale.write_bytes(b"\0" * 1000)
    mine = last.parent / ".my-notes.tmp"
    mine.write_text("not minidet's")
    code, _, err = run(capsys, "train", "--resume", last, "--quiet", "--workers", "1")
    assert code == 0, err
    assert not stale.exists() and mine.read_text() == "not minidet's"


def test_decompression_bombs_are_refused_in_one_line(tmp_path, capsys, monkeypatch, tiny_voc, tiny_run,
                                                      tiny_train_args):
    """Pillow's limit lowered so that the 128×128 images are over it (a real 200-megapixel file
    takes gigabytes to decode): refused, naming the file, before training or detection."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100)  # 16384 px: over the limit (warning zone)
    code, _, err = run(capsys, "train", "--data", tiny_voc, *tiny_train_args, "--out", tmp_path / "run")
    assert_one_line_error(code, err, "JPEGImages", "decompression bombs")
    assert not (tmp_path / "run").exists()
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 60 * 60)  # over twice the limit: Pillow's own error
    image = tiny_voc / "JPEGImages" / f"{split_names(tiny_voc, 'test')[0]}.jpg"
    code, _, err = run(capsys, "detect", "--weights", tiny_run[0] / "best.npz", image, "--out", tmp_path / "d")
    assert_one_line_error(code, err, image, "refused")
    assert not (tmp_path / "d").exists()


def test_nan_box_with_no_augment_is_one_line(tmp_path, capsys, tiny_voc, tiny_train_args):
    root = Path(shutil.copytree(tiny_voc, tmp_path / "voc"))
    xml = root / "Annotations" / f"{split_names(root, 'train')[4]}.xml"
    text = xml.read_text()
    start = text.index("<ymax>") + len("<ymax>")
    xml.write_text(text[:start] + "nan" + text[text.index("</ymax>"):])
    code, _, err = run(capsys, "train", "--data", root, *tiny_train_args, "--no-augment", "--out", tmp_path / "r")
    assert_one_line_error(code, err, xml, "object 1", "non-finite")


def test_best_checkpoint_tie_keeps_the_earlier_epoch(tmp_path, monkeypatch, tiny_voc):
    """The rule (train.py's docstring): a later epoch replaces best.npz only when strictly better."""
    _scripted_val_map(monkeypatch, [0.25, 0.25, 0.25])
    train(tiny_config(tiny_voc, tmp_path / "run", epochs=3), log=quiet, progress=False)
    _, best = load_checkpoint(tmp_path / "run" / "best.npz")
    _, last = load_checkpoint(tmp_path / "run" / "last.npz")
    assert best["epoch"] == 1 and last["epoch"] == 3 and last["best_map"] == 0.25
    _scripted_val_map(monkeypatch, [0.25, 0.5, 0.5])
    train(tiny_config(tiny_voc, tmp_path / "run2", epochs=3), log=quiet, progress=False)
    _, best = load_checkpoint(tmp_path / "run2" / "best.npz")
    assert best["epoch"] == 2


def test_detect_applies_exif_orientation(tmp_path, capsys, tiny_run):
    """A photo stored turned a quarter, with the EXIF tag that shows it upright: the detections
    are drawn on the upright picture (40×20 as shown, not 20×40 as stored)."""
    shown = np.zeros((20, 40, 3), np.uint8)
    shown[:, :10] = (255, 0, 0)  # red on the left as shown
    exif = Image.Exif()
    exif[0x0112] = 6
    photo = tmp_path / "photo.jpg"
    Image.fromarray(shown).transpose(Image.ROTATE_90).save(photo, format="PNG", exif=exif)
    code, _, err = run(capsys, "detect", "--weights", tiny_run[0] / "best.npz", photo, "--out", tmp_path / "d",
                       "--threshold", "1")
    assert code == 0, err
    drawn = np.asarray(Image.open(tmp_path / "d" / "photo_detections.png").convert("RGB"))
    assert drawn.shape == (20, 40, 3)
    assert drawn[10, 2].tolist() == [255, 0, 0] and drawn[10, 30].tolist() == [0, 0, 0]
