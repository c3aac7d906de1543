"""The layout's rules, checked on the source: layers, private names, module size, no import circles."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent / "morphlib"
MODULES = {
    ".".join(("morphlib", *p.relative_to(ROOT).with_suffix("").parts)).removesuffix(".__init__"): p
    for p in sorted(ROOT.rglob("*.py"))
}
MAX_LINES = 600


def _absolute(module: str, node: ast.ImportFrom) -> str:
    """The absolute name of the module a ``from ... import`` in ``module`` reads from."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if MODULES[module].name == "__init__.py" else module.split(".")[:-1]
    base = package[: len(package) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def _top_level_imports(module: str) -> list[tuple[str, list[str]]]:
    """``(module imported, names)`` of the imports that run when ``module`` is imported (not those inside
    functions or ``if TYPE_CHECKING``)."""
    tree = ast.parse(MODULES[module].read_text())
    out = []

    def visit(body):
        for node in body:
            if isinstance(node, ast.Import):
                out.extend((a.name, []) for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                out.append((_absolute(module, node), [a.name for a in node.names]))
            elif isinstance(node, ast.If) and "TYPE_CHECKING" not in ast.unparse(node.test):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)

    visit(tree.body)
    return out


def _all_imports(module: str) -> list[tuple[str, list[str]]]:
    tree = ast.parse(MODULES[module].read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(a.name, []) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            out.append((_absolute(module, node), [a.name for a in node.names]))
    return out


def _target(name: str, imported: str) -> str | None:
    """The morphlib module that ``from imported import name`` reads ``name`` from: a submodule when
    ``name`` is one, else ``imported`` itself."""
    if f"{imported}.{name}" in MODULES:
        return f"{imported}.{name}"
    return imported if imported in MODULES else None


def test_the_library_never_imports_the_app():
    bad = [
        (m, imported)
        for m in MODULES
        if not m.startswith("morphlib.app")
        for imported, names in _all_imports(m)
        if imported.startswith("morphlib.app") or any(_target(n, imported) == "morphlib.app" for n in names)
    ]
    assert bad == []


def test_no_private_name_crosses_a_module_border():
    bad = [
        (m, imported, name)
        for m in MODULES
        for imported, names in _all_imports(m)
        if imported.startswith("morphlib")
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert bad == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_modules_stay_small(module):
    assert len(MODULES[module].read_text().splitlines()) <= MAX_LINES


def test_no_import_circle_at_run_time():
    graph = {
        m: {
            t
            for imported, names in _top_level_imports(m)
            for t in ([_target(n, imported) for n in names] or [imported])
            if t in MODULES and t != m
        }
        for m in MODULES
    }
    state: dict[str, int] = {}
    circles = []

    def walk(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                circles.append(path[path.index(nxt) :] + [nxt])
            elif nxt not in state:
                walk(nxt, path + [nxt])
        state[node] = 2

    for m in sorted(MODULES):
        if m not in state:
            walk(m, [m])
    assert circles == []
