"""Shared fixtures: an isolated cache, a tiny synthetic dataset and one tiny training run.

The run is made once per session (two epochs of a 0.5 M-parameter model on 30 images of
56×56, a few seconds on a CPU) and shared by the command-line and training tests.
"""
from __future__ import annotations

import contextlib
import io

import pytest

# The smallest model the trainer builds: input 56 (three max-pools), width 1/16, with Fast
# YOLO's fully connected head (its dropout is state that --resume must restore).
TINY_MODEL = ["--model", "reduced", "--input-size", "56", "--width", "0.0625", "--head", "fc"]
TINY_TRAIN = TINY_MODEL + ["--batch-size", "8", "--epochs", "2", "--workers", "1", "--quiet"]


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """XDG_CACHE_HOME in tmp_path: nothing is written to (or read from) the real cache."""
    cache = tmp_path / "xdg-cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    return cache


@pytest.fixture(scope="session")
def tiny_voc(tmp_path_factory):
    """The synthetic dataset, 36 images (30 train / 3 val / 3 test), in VOC layout. Read-only."""
    from minidet.data import generate

    return generate(tmp_path_factory.mktemp("tiny_voc") / "voc", images=36, seed=3)


@pytest.fixture(scope="session")
def tiny_train_args():
    return list(TINY_TRAIN)


@pytest.fixture(scope="session")
def tiny_run(tiny_voc, tmp_path_factory):
    """`minidet train` on tiny_voc for 2 epochs: (run directory, what it printed). Read-only."""
    from minidet.cli import main

    base = tmp_path_factory.mktemp("tiny_run")
    out, stdout = base / "run", io.StringIO()
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stdout(stdout):
        mp.setenv("XDG_CACHE_HOME", str(base / "xdg-cache"))
        main(["train", "--data", str(tiny_voc), *TINY_TRAIN, "--out", str(out)])
    return out, stdout.getvalue()


@pytest.fixture(scope="session")
def ssd_run(tiny_voc, tmp_path_factory):
    """`minidet train --model ssd` on tiny_voc for 2 epochs (helpers.tiny_args): its run directory. Read-only."""
    from helpers import cli_run

    return cli_run(tiny_voc, tmp_path_factory.mktemp("ssd_run"), "ssd")


@pytest.fixture(scope="session")
def faster_run(tiny_voc, tmp_path_factory):
    """`minidet train --model faster` on tiny_voc for 2 epochs: its run directory. Read-only."""
    from helpers import cli_run

    return cli_run(tiny_voc, tmp_path_factory.mktemp("faster_run"), "faster")
