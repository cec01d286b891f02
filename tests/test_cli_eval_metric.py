"""`minidet eval` says which AP it reports, and --voc07 gives the ports' 11-point AP."""
from __future__ import annotations

import pytest

from minidet.cli import main

pytestmark = pytest.mark.usefixtures("isolated_cache")


@pytest.mark.parametrize("flag, metric", [([], "VOC all-point"), (["--voc07"], "VOC2007 11-point")])
def test_eval_prints_its_metric(capsys, tiny_voc, tiny_run, flag, metric):
    main(["eval", "--weights", str(tiny_run[0] / "best.npz"), "--data", str(tiny_voc), *flag])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"metric: {metric} AP at IoU 0.5"), out[0]
    if flag:
        assert "numpy.arange(0, 1.1, 0.1)" in out[0]
    assert f"mAP@0.5 ({metric})" in out[-1]
