"""The course: every notebook in notebooks/ runs top to bottom from a clean kernel, and has
the shape the course promises (a Quick settings cell, a Summary, three or more Exercises,
no stored outputs).

Each notebook runs with nbclient in a fresh `python3` kernel, in a temporary working
directory, with MPLBACKEND=Agg and XDG_CACHE_HOME pointing at one temporary directory shared
by all the notebooks of the session, so the built-in dataset is generated once. Any error
in any cell fails the test. The notebooks run with their quick settings (QUICK = True),
which keep each under the course's 3 minutes on an idle 2-core CPU. Measured on an idle
2-core machine of the developers' kind (`pytest tests/test_notebooks.py --durations=12`,
built-in dataset already cached): chapter 7, which trains a real detector (444 steps), 78 s;
chapter 0 32 s; chapter 9 9 s; the others 4–8 s. A busy machine takes several times that
(chapter 7 took 139–385 s while other jobs shared the cores). Chapter 7 must print its test
mAP, and it must be at least QUICK_MAP_FLOOR: the quick mode promises a working detector.

The kernels get minidet's thread policy (see minidet/__init__.py: OMP_WAIT_POLICY=PASSIVE,
OPENBLAS_THREAD_TIMEOUT=4, a setting already in the environment wins) in their environment,
because a notebook imports NumPy, and so loads OpenBLAS, before minidet can set them. With
spinning idle threads, chapter 0 took 279 s instead of about 30 s on the shared 2-core
development machine under load.
"""
import os
import re
import time
from pathlib import Path

import pytest

from minidet import THREAD_POLICY

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
CELL_TIMEOUT_S = 900  # a guard against a hung kernel: a busy machine runs chapter 7 several times slower
QUICK_CELL = re.compile(r"# Quick settings\b")  # the cell's first line; it may go on: "# Quick settings — ..."
QUICK_TRUE = re.compile(r"^QUICK\s*=\s*True\b", re.MULTILINE)
# Chapter 7's quick mode promises a working detector: the test mAP it prints must reach this.
QUICK_MAP = re.compile(r"test mAP@0\.5 after (\d+) steps: ([0-9.]+)")
QUICK_MAP_FLOOR = 0.3


@pytest.fixture(scope="session")
def shared_cache(tmp_path_factory):
    """One XDG_CACHE_HOME for every notebook of the session: the dataset is generated once."""
    return tmp_path_factory.mktemp("xdg-cache")


def _read(path):
    return nbformat.read(str(path), as_version=4)


def _exercises(markdown: str) -> int:
    """The number of list items in the '## Exercises' section of a markdown cell."""
    section = markdown.split("## Exercises", 1)[1]
    section = re.split(r"^#{1,2} ", section, maxsplit=1, flags=re.MULTILINE)[0]
    return len(re.findall(r"^\s*(?:\d+\.|[-*])\s+\S", section, flags=re.MULTILINE))


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOK_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_structure(path):
    nb = _read(path)
    nbformat.validate(nb)
    assert nb.nbformat == 4, f"{path.name}: nbformat {nb.nbformat}, expected 4"
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{path.name}: kernel is not python3"
    code = [c for c in nb.cells if c.cell_type == "code"]
    markdown = [c.source for c in nb.cells if c.cell_type == "markdown"]
    quick = [c for c in code if QUICK_CELL.match(c.source.lstrip())]
    assert len(quick) == 1, f"{path.name}: expected exactly one '# Quick settings' cell, found {len(quick)}"
    assert QUICK_TRUE.search(quick[0].source), f"{path.name}: the Quick settings cell must set QUICK = True"
    assert any(re.search(r"^## Summary\s*$", m, re.MULTILINE) for m in markdown), f"{path.name}: no '## Summary'"
    with_exercises = [m for m in markdown if re.search(r"^## Exercises\s*$", m, re.MULTILINE)]
    assert with_exercises, f"{path.name}: no '## Exercises'"
    assert _exercises(with_exercises[-1]) >= 3, f"{path.name}: fewer than 3 exercises"
    for i, cell in enumerate(code):
        assert not cell.get("outputs") and cell.get("execution_count") is None, \
            f"{path.name}: code cell {i} has stored outputs (clear them before committing)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, tmp_path, shared_cache, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(shared_cache))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    for name, value in THREAD_POLICY.items():
        monkeypatch.setenv(name, os.environ.get(name, value))
    nb = _read(path)
    client = nbclient.NotebookClient(nb, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the cell and its traceback, on any error
    print(f"{path.name}: {time.perf_counter() - start:.1f} s")
    if path.name.startswith("07_"):
        printed = QUICK_MAP.findall(_stdout(nb))
        assert len(printed) == 1, f"{path.name}: expected one 'test mAP@0.5 after N steps: X' line, found {printed}"
        print(f"{path.name}: quick-mode test mAP@0.5 {printed[0][1]} after {printed[0][0]} steps")
        assert float(printed[0][1]) >= QUICK_MAP_FLOOR, \
            f"{path.name}: the quick mode's detector reached test mAP {printed[0][1]}, below {QUICK_MAP_FLOOR}"


def _stdout(nb) -> str:
    return "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                   for out in cell.get("outputs", []) if out.get("output_type") == "stream")
