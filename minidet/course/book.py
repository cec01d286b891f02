"""The course as a book: every chapter executed, written as HTML with its outputs.

    python -m minidet.course build OUT [--notebooks DIR] [--only PATTERN] [--timeout S] [--force]

executes each notebook of notebooks/ (as committed: QUICK = True) from a clean kernel in a
temporary working directory, and writes OUT/NN_name.html (nbconvert's HTMLExporter, figures
embedded, a navigation bar) and OUT/index.html (the table of contents: each chapter with its
sections). The notebooks themselves are never written to: they stay committed without
outputs. Needs the `book` extra: `pip install -e ".[book]"` (nbclient, nbconvert, ipykernel).

The kernels get minidet's thread policy in their environment (OMP_WAIT_POLICY=PASSIVE,
OPENBLAS_THREAD_TIMEOUT=4, unless already set), as tests/test_notebooks.py does: a notebook
imports NumPy, and so loads OpenBLAS, before minidet could set them itself.
"""
from __future__ import annotations

import argparse
import html
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from minidet import THREAD_POLICY

DEFAULT_NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
HEADING = re.compile(r"^(#{1,2})\s+(.+?)\s*$", re.MULTILINE)


class BookError(Exception):
    """Bad input to the book builder: a missing directory, no notebook, an existing output."""


def _requirements():
    try:
        import nbclient  # noqa: F401
        import nbconvert  # noqa: F401
        import nbformat  # noqa: F401
    except ImportError as e:
        raise BookError(f"building the book needs nbclient and nbconvert ({e}); "
                        f"install them with: pip install -e \".[book]\"") from None


def anchor(title: str) -> str:
    """The id nbconvert's HTML gives a markdown heading (spaces become hyphens)."""
    return title.strip().replace(" ", "-")


def outline(nb) -> tuple[str, list[str]]:
    """(chapter title, section titles) from a notebook's markdown headings: the first
    level-1 heading, and every level-2 heading in order."""
    title, sections = None, []
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for level, text in HEADING.findall(cell.source):
            if level == "#" and title is None:
                title = text
            elif level == "##":
                sections.append(text)
    return title or "untitled", sections


def execute(nb, timeout: int):
    """Run every cell of `nb` in a fresh python3 kernel in a temporary directory (in place)."""
    import nbclient

    saved = {k: os.environ.get(k) for k in (*THREAD_POLICY, "MPLBACKEND")}
    for k, v in THREAD_POLICY.items():
        os.environ.setdefault(k, v)
    os.environ["MPLBACKEND"] = "Agg"
    try:
        with tempfile.TemporaryDirectory(prefix="minidet-book-") as work:
            client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                             resources={"metadata": {"path": work}})
            client.execute()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def _nav(pages, i) -> str:
    links = ['<a href="index.html">contents</a>']
    if i > 0:
        links.insert(0, f'<a href="{pages[i - 1][0]}">← {html.escape(pages[i - 1][1])}</a>')
    if i + 1 < len(pages):
        links.append(f'<a href="{pages[i + 1][0]}">{html.escape(pages[i + 1][1])} →</a>')
    return ('<nav style="font-family: sans-serif; padding: 0.6em 1em; border-bottom: 1px solid #ccc">'
            + " · ".join(links) + "</nav>")


# A solution cell (tag "solution", or source hidden in Jupyter) is folded in the book as it is
# in JupyterLab: its code and its output sit in a closed <details>, so a reader who wants to
# try the exercise first does not see the answer while scrolling past.
FOLDED_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{% block codecell %}
{%- if 'solution' in cell.metadata.get('tags', [])
      or cell.metadata.get('jupyter', {}).get('source_hidden') -%}
<details class="minidet-solution"><summary>solution: code and output (click to open)</summary>
{{ super() }}
</details>
{%- else -%}
{{ super() }}
{%- endif -%}
{% endblock codecell %}
"""


def is_solution(cell) -> bool:
    """A code cell the book folds: tagged "solution" or with its source hidden."""
    meta = cell.get("metadata", {})
    return cell.get("cell_type") == "code" and (
        "solution" in meta.get("tags", []) or bool(meta.get("jupyter", {}).get("source_hidden")))


def to_html(nb) -> str:
    """The notebook as one HTML page (JupyterLab's look), solution cells folded."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({"book.html.j2": FOLDED_TEMPLATE})],
                            template_file="book.html.j2")
    body, _ = exporter.from_notebook_node(nb)
    return body


def index_html(chapters) -> str:
    """chapters: [(file name, title, sections, seconds)]."""
    items = []
    for name, title, sections, seconds in chapters:
        subs = "".join(f'<li><a href="{name}#{html.escape(anchor(s), quote=True)}">{html.escape(s)}</a></li>'
                       for s in sections)
        items.append(f'<li><a href="{name}">{html.escape(title)}</a> '
                     f'<small>(executed in {seconds:.0f} s)</small><ul>{subs}</ul></li>')
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>minidet — the course</title></head>\n"
            "<body style=\"font-family: sans-serif; max-width: 50em; margin: 2em auto\">\n"
            "<h1>minidet — the course</h1>\n"
            "<p>Each chapter was executed from a clean kernel with its quick settings; its outputs "
            "and figures are those of that run.</p>\n<h2>Contents</h2>\n<ol start=\"0\">"
            + "".join(items) + "</ol>\n</body></html>\n")


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def build(out, notebooks=DEFAULT_NOTEBOOKS, only: str | None = None, timeout: int = 600,
          force: bool = False, log=print) -> list[Path]:
    """Execute the chapters and write the book to `out`; returns the HTML files written
    (the index last). `only`: a substring of the notebook names to build (the index then
    lists those chapters only)."""
    _requirements()
    import nbformat

    notebooks, out = Path(notebooks), Path(out)
    if not notebooks.is_dir():
        raise BookError(f"{notebooks}: notebook directory not found (pass --notebooks DIR)")
    paths = sorted(p for p in notebooks.glob("*.ipynb") if only is None or only in p.name)
    if not paths:
        raise BookError(f"{notebooks}: no notebook" + (f" matching {only!r}" if only else ""))
    if out.exists() and not out.is_dir():
        raise BookError(f"{out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise BookError(f"{out}: exists and is not empty (use --force to overwrite the book there)")
    out.mkdir(parents=True, exist_ok=True)
    pages, chapters, written = [], [], []
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)
        title, sections = outline(nb)
        pages.append((path.stem + ".html", title, sections, nb))
    for i, (name, title, sections, nb) in enumerate(pages):
        log(f"executing {name[:-5]}.ipynb ...")
        start = time.perf_counter()
        execute(nb, timeout)
        seconds = time.perf_counter() - start
        page = re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + _nav(pages, i), to_html(nb), count=1)
        _write(out / name, page)
        written.append(out / name)
        chapters.append((name, title, sections, seconds))
        log(f"  {out / name} ({seconds:.0f} s)")
    _write(out / "index.html", index_html(chapters))
    written.append(out / "index.html")
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m minidet.course",
                                     description="Build the course as HTML, every chapter executed.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="execute every chapter and write OUT/index.html and one page each")
    b.add_argument("out", help="output directory (created; must be empty unless --force)")
    b.add_argument("--notebooks", default=str(DEFAULT_NOTEBOOKS), help="the chapters' directory (default: %(default)s)")
    b.add_argument("--only", help="build only the notebooks whose name contains this")
    b.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default: %(default)s)")
    b.add_argument("--force", action="store_true", help="write into a non-empty OUT")
    e = sub.add_parser("exercises", help="measure the long exercises' runs (minidet/course/variants.py)")
    e.add_argument("out", help="the JSON record to write")
    e.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds per variant (default: 0 1 2)")
    args = parser.parse_args(argv)
    if args.command == "exercises":
        from .variants import measure, summary

        print(summary(measure(args.out, tuple(args.seeds))))
        return 0
    try:
        written = build(args.out, args.notebooks, args.only, args.timeout, args.force)
    except BookError as e:
        print(f"minidet: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # a chapter failed to execute: say which, in one line
        if type(e).__name__ == "CellExecutionError":
            first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
            print(f"minidet: error: a cell failed while building the book: {first}", file=sys.stderr)
            return 1
        raise
    print(f"the book: {written[-1]}")
    return 0
