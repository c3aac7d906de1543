"""docs/quickstart.ipynb runs as written, cell after cell, and is what scripts/make_quickstart.py makes."""

import ast
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "docs" / "quickstart.ipynb"


def test_the_notebook_is_up_to_date():
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from make_quickstart import notebook
    finally:
        sys.path.pop(0)
    assert json.loads(NOTEBOOK.read_text()) == notebook()


def test_the_notebook_runs_and_shows_its_morphs():
    cells = [c for c in json.loads(NOTEBOOK.read_text())["cells"] if c["cell_type"] == "code"]
    namespace: dict = {}
    shown = []
    for cell in cells:  # as a notebook runs them: the value of a last expression is shown
        tree = ast.parse("".join(cell["source"]))
        last = tree.body.pop() if isinstance(tree.body[-1], ast.Expr) else None
        exec(compile(tree, "quickstart.ipynb", "exec"), namespace)
        expression = None if last is None else compile(ast.Expression(last.value), "quickstart.ipynb", "eval")
        shown.append(None if expression is None else eval(expression, namespace))
    result = shown[1]
    assert "meets the goal (log-odds margin >= 3)" in namespace["result"].auto.message
    assert "data:image/gif;base64," in result._repr_html_()
    assert "star" in shown[2] and len(shown[2].splitlines()) == 1 + 6  # the table: header and 6 frames
