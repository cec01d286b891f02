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
