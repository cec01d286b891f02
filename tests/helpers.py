"""What several test modules share: running the command line in-process, its one-line
error, and a tiny training run that a test can interrupt after an epoch."""
from __future__ import annotations

from minidet.cli import main
from minidet.train import TrainConfig


def run(capsys, *argv):
    """(exit status, stdout, stderr) of `minidet argv...` run in-process."""
    try:
        main([str(a) for a in argv])
        code = 0
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code, err, *names):
    """Exit status 2 and one line `minidet: error: ...` on stderr naming each of `names`."""
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("minidet: error: "), err
    assert "Traceback" not in err
    for name in names:
        assert str(name) in lines[0], (name, lines[0])


def tiny_config(data, out, **kw) -> TrainConfig:
    """The Python twin of conftest.TINY_TRAIN: a 56-pixel, 1/16-width reduced model, 2 epochs."""
    settings = dict(data=str(data), model="reduced", input_size=56, width=0.0625, head="fc", batch_size=8,
                    epochs=2, workers=1, out=str(out))
    return TrainConfig(**{**settings, **kw})


class Stop(Exception):
    """Raised from the log callback to interrupt a run after an epoch (as a crash would)."""


def stop_after_epoch(n):
    """A `train(log=...)` callback that raises Stop once epoch n has been logged."""
    def log(line):
        if line.startswith(f"epoch {n}/"):
            raise Stop(line)
    return log


def randomize_batchnorm(bn, rng):
    """Move a BatchNorm2d's affine terms and running statistics away from their defaults
    (gamma in [0.5, 1.5), beta and the running mean normal, the running variance in [0.5, 2))."""
    c = bn.num_features
    bn.params["gamma"][:] = rng.uniform(0.5, 1.5, c)
    bn.params["beta"][:] = rng.normal(size=c)
    bn.buffers["running_mean"][:] = rng.normal(size=c)
    bn.buffers["running_var"][:] = rng.uniform(0.5, 2.0, c)
    return bn


def tiny_args(model: str) -> list:
    """Command-line settings of a tiny run of `model` (56 pixels, width 1/16, 2 epochs of 8)."""
    return ["--model", model, "--input-size", "56", "--width", "0.0625", "--batch-size", "8", "--epochs", "2",
            "--workers", "1", "--quiet"]


def cli_run(data, base, model: str):
    """`minidet train` of tiny_args(model) on `data`, cache and run directory under `base`: the run directory."""
    import contextlib
    import io

    import pytest

    out = base / "run"
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(io.StringIO()):
        mp.setenv("XDG_CACHE_HOME", str(base / "cache"))
        main(["train", "--data", str(data), *tiny_args(model), "--out", str(out)])
    return out


def interrupted_and_resumed(capsys, data, out, model: str):
    """tiny_config's run of `model` stopped after epoch 1, then resumed by the command line: `out`."""
    import pytest

    from minidet.train import train

    with pytest.raises(Stop):
        train(tiny_config(data, out, model=model, head=None), log=stop_after_epoch(1), progress=False)
    code, _, err = run(capsys, "train", "--resume", out / "last.npz", "--quiet", "--workers", "1")
    assert code == 0, err
    return out


def assert_same_run(full, resumed, history_keys=(), meta_keys=()):
    """The last checkpoints of two runs hold the same weights, optimizer state, history
    (`history_keys` of every epoch) and `meta_keys` entries: a resume was exact."""
    import numpy as np

    from minidet.models import load_checkpoint

    a, meta_a = load_checkpoint(full / "last.npz")
    b, meta_b = load_checkpoint(resumed / "last.npz")
    for (name, p, _, k), (_, q, _, _) in zip(a.named_parameters(), b.named_parameters()):
        assert np.array_equal(p[k], q[k]), name
    for k in meta_a["optimizer"]:
        assert np.array_equal(meta_a["optimizer"][k], meta_b["optimizer"][k]), k
    for k in meta_keys:
        assert meta_a[k] == meta_b[k], k
    rows = lambda meta: [[h[k] for k in history_keys] for h in meta["history"]]  # noqa: E731
    assert rows(meta_a) == rows(meta_b)
    return a, meta_a


def assert_eval_and_detect(capsys, tmp_path, data, weights, *detect_options):
    """`minidet eval` on `weights` gives the library's mAP on the test split, and `minidet
    detect` draws one image; returns the library's detections."""
    import json

    import pytest

    from minidet.data import BatchLoader, VOCDataset
    from minidet.inference import evaluate_loader
    from minidet.models import load

    out = tmp_path / "eval.json"
    code, _, err = run(capsys, "eval", "--weights", weights, "--data", data, "--json", out)
    assert code == 0, err
    model = load(weights)
    with BatchLoader(VOCDataset(data, "test"), 8, model.input_size, workers=1) as loader:
        expected, detections, _ = evaluate_loader(model, loader)
    assert json.loads(out.read_text())["mAP"] == pytest.approx(expected["mAP"], abs=1e-12)
    name = (data / "ImageSets" / "Main" / "test.txt").read_text().split()[0]
    image = data / "JPEGImages" / f"{name}.jpg"
    code, stdout, err = run(capsys, "detect", "--weights", weights, image, "--out", tmp_path / "dets", *detect_options)
    assert code == 0, err
    assert len(list((tmp_path / "dets").glob("*.png"))) == 1 and str(image) in stdout
    return detections


def assert_resume_refused_across(capsys, tmp_path, first, first_model, second, second_model):
    """Resuming `first` (a checkpoint) as --model second_model, and `second` as first_model,
    are one-line errors naming the checkpoint, and write nothing."""
    for i, (last, model) in enumerate(((first, second_model), (second, first_model))):
        code, _, err = run(capsys, "train", "--resume", last, "--model", model, "--quiet", "--out", tmp_path / str(i))
        assert_one_line_error(code, err, last, "model")
        assert not (tmp_path / str(i)).exists()


def run_files(run_dir):
    """Assert a run directory holds every file a run writes; (model, meta, history) of its last.npz."""
    import json

    from minidet.models import load_checkpoint

    for name in ("last.npz", "best.npz", "metrics.json", "loss.png", "map.png", "detections.png"):
        assert (run_dir / name).is_file(), name
    model, meta = load_checkpoint(run_dir / "last.npz")
    return model, meta, json.loads((run_dir / "metrics.json").read_text())["history"]
