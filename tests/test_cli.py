"""The `minidet` command: bad input ends in one line and exit status 2, the happy paths work.

Most commands run in-process (`minidet.cli.main`, SystemExit caught); a few run as
`python -m minidet` to show that stderr holds the one line and no traceback.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from minidet.backend import gpu_available
from minidet.cli import main
from minidet.data import BatchLoader, SYNTH_CLASSES, VOCDataset, generate
from minidet.data.synth import split_sizes
from minidet.inference import evaluate_loader
from minidet.models import load, reduced_fast_yolo, save

from helpers import assert_one_line_error, run

pytestmark = pytest.mark.usefixtures("isolated_cache")


def run_process(*argv, cwd=None, env_cache=None):
    env = None
    if env_cache is not None:
        import os

        env = {**os.environ, "XDG_CACHE_HOME": str(env_cache)}
    return subprocess.run([sys.executable, "-m", "minidet", *map(str, argv)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, env=env)


def copy_voc(src, dst) -> Path:
    shutil.copytree(src, dst)
    return Path(dst)


def annotation(root, split="train", k=0) -> Path:
    name = (root / "ImageSets" / "Main" / f"{split}.txt").read_text().split()[k]
    return root / "Annotations" / f"{name}.xml"


def image_file(root, split="train", k=0) -> Path:
    name = (root / "ImageSets" / "Main" / f"{split}.txt").read_text().split()[k]
    return root / "JPEGImages" / f"{name}.jpg"


# --- bad datasets ----------------------------------------------------------------------


def test_missing_dataset_directory(tmp_path, capsys, tiny_train_args):
    missing = tmp_path / "no-such-dataset"
    code, _, err = run(capsys, "train", "--data", missing, *tiny_train_args, "--out", tmp_path / "run")
    assert_one_line_error(code, err, missing, "not found")


def test_missing_dataset_directory_process_eval(tmp_path, tiny_run):
    """As a process: stderr is the one line, no traceback, exit status 2."""
    run_dir, _ = tiny_run
    missing = tmp_path / "nowhere"
    p = run_process("eval", "--weights", run_dir / "best.npz", "--data", missing, env_cache=tmp_path / "c")
    assert_one_line_error(p.returncode, p.stderr, missing)


@pytest.mark.parametrize("damage", ["malformed", "truncated"])
def test_bad_xml_names_the_file(tmp_path, capsys, tiny_voc, tiny_train_args, damage):
    root = copy_voc(tiny_voc, tmp_path / "voc")
    xml = annotation(root, "train", 3)
    text = xml.read_text()
    xml.write_text("<annotation><object><name>x</name></objec></annotation>" if damage == "malformed"
                   else text[:len(text) // 2])
    code, _, err = run(capsys, "train", "--data", root, *tiny_train_args, "--out", tmp_path / "run")
    assert_one_line_error(code, err, xml, "malformed XML")
    assert not (tmp_path / "run" / "last.npz").exists()


def test_unknown_class_names_the_file_and_class(tmp_path, capsys, tiny_voc, tiny_train_args):
    root = copy_voc(tiny_voc, tmp_path / "voc")
    xml = annotation(root, "val", 0)
    text = xml.read_text()
    first = text.split("<name>")[1].split("</name>")[0]
    xml.write_text(text.replace(f"<name>{first}</name>", "<name>unicorn</name>", 1))
    code, _, err = run(capsys, "train", "--data", root, *tiny_train_args, "--out", tmp_path / "run")
    assert_one_line_error(code, err, xml, "unicorn")


def test_missing_image_names_the_file(tmp_path, capsys, tiny_voc, tiny_train_args):
    root = copy_voc(tiny_voc, tmp_path / "voc")
    jpg = image_file(root, "train", 5)
    jpg.unlink()
    code, _, err = run(capsys, "train", "--data", root, *tiny_train_args, "--out", tmp_path / "run")
    assert_one_line_error(code, err, jpg, "not found")


def test_undecodable_image_fails_at_first_read_in_one_line(tmp_path, tiny_voc, tiny_train_args):
    """The image decodes in a loader thread during the first epoch; the error still reaches
    the command line as one line (as a process: nothing else on stderr)."""
    root = copy_voc(tiny_voc, tmp_path / "voc")
    jpg = image_file(root, "train", 2)
    jpg.write_bytes(b"this is not a JPEG" * 10)
    p = run_process("train", "--data", root, *tiny_train_args, "--out", tmp_path / "run",
                    env_cache=tmp_path / "c")
    assert_one_line_error(p.returncode, p.stderr, jpg, "cannot decode")


def test_odd_images_boxes_outside_and_empty_images_train(tmp_path, capsys, tiny_train_args):
    """Grayscale, RGBA and palette images are converted; a box reaching outside its image is
    clipped and counted in a warning; an image without objects is fine. Training runs."""
    root = generate(tmp_path / "voc", images=12, seed=5)  # 10 train / 1 val / 1 test
    assert split_sizes(12) == {"train": 10, "val": 1, "test": 1}
    for k, mode in enumerate(["L", "RGBA", "P"]):
        jpg = image_file(root, "train", k)
        img = Image.open(jpg).convert(mode)
        # JPEG cannot hold RGBA or a palette: the bytes are PNG under the .jpg name, which
        # Pillow (and VOCDataset) identify by content.
        img.save(jpg, format="JPEG" if mode == "L" else "PNG")
        assert Image.open(jpg).mode == mode
    empty = annotation(root, "train", 3)
    text = empty.read_text()
    empty.write_text(text[:text.index("<object>")] + "</annotation>\n")
    outside = annotation(root, "train", 4)
    text = outside.read_text()
    start = text.index("<xmax>") + len("<xmax>")
    outside.write_text(text[:start] + "5000" + text[text.index("</xmax>"):])

    with pytest.warns(UserWarning, match=r"clipped 1 boxes"):
        dataset = VOCDataset(root, "train")
    assert dataset.clipped_boxes == 1
    assert dataset.annotations[3].boxes.shape == (0, 4)
    assert dataset.annotations[4].boxes[0, 2] == 1.0
    for k in range(3):
        image = dataset[k].image
        assert image.shape == (128, 128, 3) and image.dtype == np.uint8

    args = [a for a in tiny_train_args]
    args[args.index("--batch-size") + 1] = "5"
    args[args.index("--epochs") + 1] = "1"
    with pytest.warns(UserWarning, match="clipped"):
        code, out, err = run(capsys, "train", "--data", root, *args, "--out", tmp_path / "run")
    assert code == 0, err
    assert load(tmp_path / "run" / "last.npz").num_parameters() > 0
    assert "test mAP@0.5" in out


# --- bad checkpoints -------------------------------------------------------------------


def test_eval_missing_checkpoint(tmp_path, capsys, tiny_voc):
    missing = tmp_path / "none.npz"
    code, _, err = run(capsys, "eval", "--weights", missing, "--data", tiny_voc)
    assert_one_line_error(code, err, missing)


@pytest.mark.parametrize("damage", ["truncated", "random"])
def test_eval_damaged_checkpoint(tmp_path, capsys, tiny_voc, tiny_run, damage):
    good = (tiny_run[0] / "best.npz").read_bytes()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(good[:len(good) // 2] if damage == "truncated"
                    else np.random.default_rng(0).bytes(len(good)))
    code, _, err = run(capsys, "eval", "--weights", bad, "--data", tiny_voc)
    assert_one_line_error(code, err, bad, "damaged")


def test_eval_damaged_checkpoint_process(tmp_path, tiny_voc):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04" + np.random.default_rng(1).bytes(5000))
    p = run_process("eval", "--weights", bad, "--data", tiny_voc, env_cache=tmp_path / "c")
    assert_one_line_error(p.returncode, p.stderr, bad)


def test_eval_checkpoint_whose_weights_are_of_another_architecture(tmp_path, capsys, tiny_voc):
    model = reduced_fast_yolo(56, 0.0625, C=20)
    model.arch = {"name": "reduced_fast_yolo",
                  "kwargs": dict(input_size=56, width=0.125, S=7, B=2, C=20, seed=0)}
    path = tmp_path / "other.npz"
    save(model, path, classes=list(SYNTH_CLASSES))
    code, _, err = run(capsys, "eval", "--weights", path, "--data", tiny_voc)
    assert_one_line_error(code, err, path, "0.W", "the architecture needs")


def test_eval_checkpoint_of_an_unknown_architecture(tmp_path, capsys, tiny_voc):
    model = reduced_fast_yolo(56, 0.0625, C=20)
    model.arch = {"name": "resnet50", "kwargs": {}}
    path = tmp_path / "resnet.npz"
    save(model, path, classes=list(SYNTH_CLASSES))
    code, _, err = run(capsys, "eval", "--weights", path, "--data", tiny_voc)
    assert_one_line_error(code, err, path, "resnet50")


def test_eval_checkpoint_trained_on_other_classes(tmp_path, capsys, tiny_voc):
    path = tmp_path / "three.npz"
    save(reduced_fast_yolo(56, 0.0625, C=3), path, classes=["cat", "dog", "cow"])
    code, _, err = run(capsys, "eval", "--weights", path, "--data", tiny_voc)
    assert_one_line_error(code, err, path, "classes")


def test_resume_with_other_settings_names_the_setting(tmp_path, capsys, tiny_run):
    last = tiny_run[0] / "last.npz"
    before = last.read_bytes()
    code, _, err = run(capsys, "train", "--resume", last, "--batch-size", "4", "--quiet", "--out", tmp_path / "r")
    assert_one_line_error(code, err, last, "batch_size")
    assert last.read_bytes() == before


def test_resume_from_a_model_only_checkpoint(tmp_path, capsys):
    path = tmp_path / "model.npz"
    save(reduced_fast_yolo(56, 0.0625), path)
    code, _, err = run(capsys, "train", "--resume", path, "--quiet")
    assert_one_line_error(code, err, path, "resume")


@pytest.mark.skipif(gpu_available(), reason="a GPU is available")
@pytest.mark.parametrize("command", ["train", "eval"])
def test_device_cuda_without_gpu(tmp_path, capsys, tiny_voc, tiny_run, tiny_train_args, command):
    if command == "train":
        argv = ["train", "--data", tiny_voc, *tiny_train_args, "--out", tmp_path / "run"]
    else:
        argv = ["eval", "--weights", tiny_run[0] / "best.npz", "--data", tiny_voc]
    code, _, err = run(capsys, *argv, "--device", "cuda")
    assert_one_line_error(code, err, "cuda", "no GPU")
    assert not (tmp_path / "run").exists()


def test_bad_arguments_exit_2(capsys):
    code, _, err = run(capsys, "train", "--epochs", "0")
    assert code == 2 and "--epochs" in err


# --- happy paths -----------------------------------------------------------------------


def test_data_synth_writes_voc_layout(tmp_path, capsys):
    out = tmp_path / "synth"
    code, stdout, err = run(capsys, "data", "synth", out, "--images", "24", "--seed", "3")
    assert code == 0, err
    assert str(out) in stdout
    sizes = split_sizes(24)
    assert len(list((out / "Annotations").glob("*.xml"))) == 24
    assert len(list((out / "JPEGImages").glob("*.jpg"))) == 24
    for split in ("train", "val", "test"):
        assert len((out / "ImageSets" / "Main" / f"{split}.txt").read_text().split()) == sizes[split]
    trainval = (out / "ImageSets" / "Main" / "trainval.txt").read_text().split()
    assert len(trainval) == sizes["train"] + sizes["val"]
    assert tuple((out / "classes.txt").read_text().split()) == SYNTH_CLASSES
    dataset = VOCDataset(out, "train")
    assert len(dataset) == sizes["train"] and dataset[0].image.shape == (128, 128, 3)
    # The same bytes as the library function with the same arguments.
    again = generate(tmp_path / "again", images=24, seed=3)
    assert (again / "Annotations" / "000007.xml").read_text() == (out / "Annotations" / "000007.xml").read_text()


def test_train_writes_the_run(tiny_run):
    run_dir, stdout = tiny_run
    for name in ("last.npz", "best.npz", "metrics.csv", "metrics.json", "loss.png", "map.png", "detections.png"):
        assert (run_dir / name).is_file(), name
    assert "test mAP@0.5" in stdout
    assert str(run_dir) in stdout
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert [h["epoch"] for h in metrics["history"]] == [1, 2]
    assert all(np.isfinite(h["loss"]) for h in metrics["history"])
    assert 0.0 <= metrics["test_mAP"] <= 1.0
    rows = (run_dir / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 3 and rows[0].startswith("epoch,")
    for png in ("loss.png", "map.png", "detections.png"):
        with Image.open(run_dir / png) as img:
            assert img.format == "PNG" and img.width > 10
    assert not list(run_dir.glob("*.tmp")) and not list(run_dir.glob(".*"))


def test_eval_json_matches_evaluate_loader(tmp_path, capsys, tiny_voc, tiny_run):
    weights = tiny_run[0] / "best.npz"
    out = tmp_path / "eval.json"
    code, stdout, err = run(capsys, "eval", "--weights", weights, "--data", tiny_voc, "--split", "test",
                            "--json", out)
    assert code == 0, err
    result = json.loads(out.read_text())
    assert set(result) == {"mAP", "AP"}
    assert set(result["AP"]) <= set(SYNTH_CLASSES) and result["AP"]
    assert f"{result['mAP']:.4f}" in stdout

    model = load(weights)
    dataset = VOCDataset(tiny_voc, "test")
    with BatchLoader(dataset, 8, model.input_size, workers=1) as loader:
        expected, _, _ = evaluate_loader(model, loader)
    assert result["mAP"] == pytest.approx(expected["mAP"], abs=1e-12)
    assert result["AP"] == pytest.approx({SYNTH_CLASSES[c]: ap for c, ap in expected["AP"].items()}, abs=1e-12)
    present = {SYNTH_CLASSES[int(c)] for a in dataset.annotations for c in a.labels}
    assert set(result["AP"]) == present


def test_detect_writes_png(tmp_path, capsys, tiny_voc, tiny_run):
    image = image_file(tiny_voc, "test", 0)
    out = tmp_path / "dets"
    code, stdout, err = run(capsys, "detect", "--weights", tiny_run[0] / "best.npz", image, "--out", out)
    assert code == 0, err
    pngs = list(out.glob("*.png"))
    assert len(pngs) == 1 and pngs[0].stem.startswith(image.stem)
    with Image.open(pngs[0]) as img:
        assert img.format == "PNG" and img.size == Image.open(image).size
    assert str(image) in stdout


def test_detect_missing_image(tmp_path, capsys, tiny_run):
    missing = tmp_path / "nothing.jpg"
    code, _, err = run(capsys, "detect", "--weights", tiny_run[0] / "best.npz", missing, "--out", tmp_path / "d")
    assert_one_line_error(code, err, missing)


def test_gradcheck_command(capsys, monkeypatch):
    """The command's wiring on a cheap subset of the checks (the full table takes over a minute
    on a loaded 2-core CPU; tests/test_layers.py checks every layer)."""
    import minidet.gradcheck as gc

    cases = gc.standard_cases()
    cheap = [c for c in cases if c[0] in ("Conv2d 3×3 s2 p1", "Linear", "Flatten", "Reshape", "Dropout 0.5")]
    assert len(cheap) == 5
    monkeypatch.setattr(gc, "standard_cases", lambda: cheap)
    code, out, err = run(capsys, "gradcheck")
    assert code == 0, out + err
    assert "all passed" in out and "YoloLoss" in out


def test_gradcheck_command_fails_on_a_wrong_gradient(capsys, monkeypatch):
    import minidet.gradcheck as gc
    from minidet.layers import Linear

    class WrongLinear(Linear):
        def backward(self, dy):
            dx = super().backward(dy)
            self.grads["b"] = self.grads["b"] * 1.001
            return dx

    rng = np.random.default_rng(0)
    monkeypatch.setattr(gc, "standard_cases",
                        lambda: [("Linear", WrongLinear(4, 3, rng=rng), rng.standard_normal((2, 4)))])
    code, out, _ = run(capsys, "gradcheck")
    assert code == 1
    assert "SOME FAILED" in out and "FAIL" in out


def test_python_dash_m_help(tmp_path):
    p = run_process("--help", env_cache=tmp_path / "c")
    assert p.returncode == 0, p.stderr
    for command in ("train", "eval", "detect", "data", "gradcheck"):
        assert command in p.stdout
