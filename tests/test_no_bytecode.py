"""Tests leave no `__pycache__` in the source tree (see tests/conftest.py)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent


def test_this_session_writes_no_bytecode() -> None:
    assert sys.dont_write_bytecode
    assert os.environ["PYTHONDONTWRITEBYTECODE"] == "1"


def test_a_subprocess_with_the_session_environment_writes_no_bytecode(tmp_path: Path) -> None:
    """A package imported by a child on PYTHONPATH, as the subprocess tests do, gets no
    `__pycache__`; a child without the variable would write one (the check can fail)."""
    shutil.copytree(
        REPO / "nvlib", tmp_path / "nvlib", ignore=shutil.ignore_patterns("__pycache__")
    )
    code = "import nvlib.fsutil"
    env = dict(PYTHONPATH=str(tmp_path), PATH="/usr/bin:/bin")  # without the variable
    with_variable = {**env, "PYTHONDONTWRITEBYTECODE": os.environ["PYTHONDONTWRITEBYTECODE"]}
    subprocess.run(
        [sys.executable, "-c", code], check=True, env=with_variable, cwd=tmp_path, timeout=60
    )
    assert list(tmp_path.rglob("__pycache__")) == []
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path, timeout=60)
    assert list(tmp_path.rglob("__pycache__")) != []


def test_every_bare_subprocess_environment_sets_the_variable() -> None:
    """An env dict written out in a test (not a copy of os.environ) that puts the checkout
    on PYTHONPATH must also say PYTHONDONTWRITEBYTECODE: it inherits nothing."""
    missing = []
    for path in sorted(TESTS.rglob("*.py")):
        text = path.read_text()
        for match in re.finditer(r"\{[^{}]*\"PYTHONPATH\"[^{}]*\}", text):
            literal = match.group(0)
            if "os.environ" not in literal and "PYTHONDONTWRITEBYTECODE" not in literal:
                line = text.count("\n", 0, match.start()) + 1
                missing.append(f"{path.relative_to(REPO)}:{line}")
    assert missing == []
