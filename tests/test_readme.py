"""Every ```python block of the README runs as written, each after the ones before it (the API example
against a launched app)."""

import os
import re
import subprocess
import sys

from _app_server import ROOT, running_app

BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
LIBRARY = [b for b in BLOCKS if "gradio_client" not in b]
API = [b for b in BLOCKS if "gradio_client" in b]


def test_the_library_examples_run(tmp_path):
    assert len(LIBRARY) >= 3
    env = dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg")
    (tmp_path / "assets").symlink_to(ROOT / "assets")  # the examples name the bundled photos
    script = "\n\n".join(LIBRARY)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "out" / "morph.gif").is_file()
    assert (tmp_path / "my-models" / "pets" / "model.safetensors").is_file()
    lines = done.stdout.splitlines()
    first = next(i for i, line in enumerate(lines) if line.strip()[:1].isdigit())
    table = []  # the first printed table: the morph's, one row per frame
    for line in lines[first:]:
        if not line.strip()[:1].isdigit():
            break
        table.append(line.split())
    assert table[0][-1] != "8" and table[-1][-1] == "8"  # the printed morph ends as the target


def test_the_api_example_runs_against_the_app(tmp_path):
    (block,) = API
    with running_app(tmp_path) as (_, url, _engine):
        code = block.replace("http://127.0.0.1:7860/", url)
        cwd = os.getcwd()
        os.chdir(ROOT)  # the example names files relative to the repository
        try:
            exec(compile(code, "README.md", "exec"), {})
        finally:
            os.chdir(cwd)
