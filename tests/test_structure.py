"""The shape of the code base: small modules, no import cycles (function-level imports
included), and kernels/ standing alone (it imports nothing from minidet)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 350


def modules() -> dict:
    """{dotted name: path} of every module of minidet/ and kernels/ (a package is its __init__)."""
    out = {}
    for top in ("minidet", "kernels"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, known) -> set:
    """The modules of `known` that module `name` imports anywhere in its body (inside
    functions too). Importing a.b.c also runs package a.b, unless `name` lies inside it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            targets.add(module)
            targets.update(f"{module}.{alias.name}" for alias in node.names)
    edges = set()
    for target in targets:
        parts = target.split(".")
        for k in range(1, len(parts) + 1):
            prefix = ".".join(parts[:k])
            if prefix in known and prefix != name and not (name + ".").startswith(prefix + "."):
                edges.add(prefix)
    return edges


def graph() -> dict:
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def cycles(edges: dict) -> list:
    """The strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_module_over_the_line_limit():
    long = {name: n for name, path in modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_cycle_finder_sees_a_cycle():
    # The finder itself: a → b → c → a is one cycle, d alone none.
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    known = modules()
    edges = imports_of("minidet.train", known["minidet.train"], known)
    assert {"minidet.families", "minidet.loop", "minidet.train_config"} <= edges


def test_kernels_import_nothing_from_minidet():
    bad = {name: sorted(e for e in deps if e.split(".")[0] == "minidet")
           for name, deps in graph().items() if name.split(".")[0] == "kernels"}
    assert not {k: v for k, v in bad.items() if v}
