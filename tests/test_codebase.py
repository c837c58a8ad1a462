"""The layout rules of docs/design.md, checked on the source: short modules, no private helper used across modules."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted((ROOT / "mae_hf").rglob("*.py")) + [ROOT / "app.py", ROOT / "train_accelerate.py"]
MAX_LINES = 600


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_modules_stay_short_and_import_no_private_helper(path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_LINES, f"{path.name} has over {MAX_LINES} lines: split it by capability"
    private = [
        f"{node.module or '.'}.{alias.name}"
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("mae_hf"))
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert not private, f"{path.name} imports private helpers {private}: make them public where they are defined"
