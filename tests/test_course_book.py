"""`python -m minidet.course build OUT` executes chapters and writes them as HTML with their
outputs and a table of contents; the committed notebooks are left without outputs."""
import subprocess
import sys

import pytest

pytest.importorskip("nbclient")
pytest.importorskip("nbconvert")

from minidet.course import book  # noqa: E402

CHAPTER = "01_layers"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    before = (book.DEFAULT_NOTEBOOKS / f"{CHAPTER}.ipynb").read_bytes()
    out = tmp_path_factory.mktemp("book") / "out"
    written = book.build(out, only=CHAPTER, log=lambda *a: None)
    return out, written, before


def test_build_writes_the_executed_chapter_with_its_outputs(built):
    out, written, _ = built
    assert [p.name for p in written] == [f"{CHAPTER}.html", "index.html"]
    page = (out / f"{CHAPTER}.html").read_text(encoding="utf-8")
    assert "data:image/png;base64," in page            # the figures are embedded
    assert "mean squared error:" in page                # a printed output of the training cell
    assert 'href="index.html"' in page                  # the navigation back to the contents


def test_index_lists_the_chapter_and_its_sections(built):
    out, _, _ = built
    index = (out / "index.html").read_text(encoding="utf-8")
    assert f'href="{CHAPTER}.html"' in index
    assert "1 · Layers with an explicit backward" in index
    assert f'href="{CHAPTER}.html#The-contract"' in index
    page = (out / f"{CHAPTER}.html").read_text(encoding="utf-8")
    assert 'id="The-contract"' in page                  # the section link lands on its heading


def test_the_committed_notebook_keeps_no_outputs(built):
    _, _, before = built
    assert (book.DEFAULT_NOTEBOOKS / f"{CHAPTER}.ipynb").read_bytes() == before


def test_bad_input_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    for args, needle in [(["build", str(tmp_path / "full")], "not empty"),
                         (["build", str(tmp_path / "o"), "--notebooks", str(tmp_path / "none")], "not found"),
                         (["build", str(tmp_path / "o"), "--only", "no-such-chapter"], "no notebook")]:
        r = subprocess.run([sys.executable, "-m", "minidet.course", *args], capture_output=True, text=True)
        assert r.returncode == 2, r.stderr
        assert r.stderr.startswith("minidet: error: ") and needle in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def test_solution_cells_are_folded_and_the_others_are_not(built):
    import nbformat

    out, _, _ = built
    nb = nbformat.read(str(book.DEFAULT_NOTEBOOKS / f"{CHAPTER}.ipynb"), as_version=4)
    solutions = [c for c in nb.cells if book.is_solution(c)]
    assert solutions, "the chapter has solution cells to fold"
    page = (out / f"{CHAPTER}.html").read_text(encoding="utf-8")
    folds = page.split('<details class="minidet-solution">')[1:]
    assert len(folds) == len(solutions)
    for fold in folds:                                   # each fold holds one solution cell, closed
        cell = fold.split("</details>", 1)[0]
        assert "celltag_solution" in cell and cell.count("jp-CodeCell") == 1
    outside = "".join(f.split("</details>", 1)[1] for f in folds) + page.split('<details class="minidet-solution">')[0]
    assert "celltag_solution" not in outside             # no solution cell left unfolded
    assert "jp-CodeCell" in outside                      # ordinary code cells stay open
