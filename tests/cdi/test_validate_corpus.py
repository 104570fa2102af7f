"""`validate` over a corpus: tests/cdi/data/{good,bad}, one file per case, named for it.

A good file loads with no problem. A bad file is named for its fault and opens with
its expected problems, one `# expect: <field path>: <reason>` line each (or
`# expect-prefix:` for a parser message); the problems found must be exactly those,
in order, so an extra problem fails too. The same files go through `nvidia-cdi
validate`, which must name the file with each problem and exit 1.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cdi.load import read_spec

DATA = Path(__file__).parent / "data"
GOOD = sorted((DATA / "good").iterdir())
BAD = sorted((DATA / "bad").iterdir())


def expectations(path: Path) -> list[tuple[str, str]]:
    """(kind, text) for each `# expect:` / `# expect-prefix:` header line."""
    found = []
    for line in path.read_text().splitlines():
        for kind in ("expect", "expect-prefix"):
            tag = f"# {kind}: "
            if line.startswith(tag):
                found.append((kind, line[len(tag) :]))
    return found


def problem_text(path: str, reason: str) -> str:
    return f"{path}: {reason}" if path else reason


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.name)
def test_good(path: Path) -> None:
    spec, problems = read_spec(str(path))
    assert [str(p) for p in problems] == []
    assert spec is not None


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.name)
def test_bad(path: Path) -> None:
    expected = expectations(path)
    assert expected, f"{path.name} has no # expect: line"
    spec, problems = read_spec(str(path))
    assert spec is None
    assert all(p.file == str(path) for p in problems)
    found = [problem_text(p.path, p.reason) for p in problems]
    assert len(found) == len(expected), found
    for (kind, text), got in zip(expected, found, strict=True):
        if kind == "expect":
            assert got == text
        else:
            assert got.startswith(text)


def test_cli_reports_every_problem_with_its_file() -> None:
    bad = [BAD[0], BAD[1]]
    result = subprocess.run(
        [sys.executable, "-m", "cdi", "validate", *map(str, bad), str(GOOD[0])],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert len(lines) == sum(len(expectations(p)) for p in bad)
    for path in bad:
        assert any(line.startswith(f"{path}: ") for line in lines)
    assert "2 problem(s) in 3 file(s) checked" in result.stderr


def test_cli_accepts_good_directory() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cdi", "validate", str(DATA / "good")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "")
    yaml_and_json = [p for p in GOOD if p.suffix in (".yaml", ".json")]
    assert f"{len(yaml_and_json)} file(s) valid" in result.stderr


def test_cli_reports_same_directory_conflict(tmp_path: Path) -> None:
    """Two files of one directory defining a device: CDI drops it."""
    text = (DATA / "good" / "minimal-0.3.0.yaml").read_text()
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "cdi", "validate", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == (
        f'{tmp_path}/b.yaml: devices[0].name: conflicting device "example.com/minimal=gpu0" '
        f"(also defined in {tmp_path}/a.yaml; CDI drops it from both)\n"
    )
