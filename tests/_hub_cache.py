"""A Hugging Face Hub cache laid out by the tests, in the format huggingface_hub writes."""

from __future__ import annotations

from pathlib import Path

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def snapshot(cache: Path, repo_id: str, commit: str = COMMIT) -> Path:
    """Lay out ``models--org--name`` as huggingface_hub does; return the (empty) snapshot folder."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    folder = repo / "snapshots" / commit
    folder.mkdir(parents=True)
    return folder
