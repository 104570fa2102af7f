"""Every file a comment, docstring or doc cites is in the repository.

A citation of a file that does not ship (a specification kept beside a working copy, a
design note) sends a maintainer to something they do not have. This walks the
repository's text files (code, tests, docs, the chart, tools, bench) and fails on:

- a Markdown link `[text](path)` in a `.md` file whose path, resolved against that
  file's directory, does not exist, or whose `#anchor` names no heading of its target;
- a bare mention of a Markdown file (`docs/labels.md`, `labels.md`), resolved against
  the file's directory and then the repository root, or of a path under one of the
  repository's top-level directories (`tests/support/helm_chart.py`, `nvlib/fsutil.py`),
  resolved against the root, or of a path that climbs out of the checkout (`../x/y.py`);
- any section sign: numbered sections belong to documents outside the repository (the
  docs here have headings, cited as `docs/x.md#heading` or by name).

Matrix: the scanner's rules as a table of lines (what counts as a citation, what does
not); then the scan of the whole repository. This module is left out of the scan: its
table holds made-up bad citations (of documents that exist nowhere) it must catch.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
THIS = Path(__file__).resolve()

SKIP_DIRS = {
    ".git",
    ".venv",
    "__pycache__",
    ".pytest_cache",
    ".ruff_cache",
    ".mypy_cache",
    "build",
    "dist",
}
TEXT_SUFFIXES = {
    ".py",
    ".pyi",
    ".md",
    ".yaml",
    ".yml",
    ".tpl",
    ".txt",
    ".json",
    ".sh",
    ".j2",
    ".proto",
    ".toml",
    ".cfg",
    ".ini",
}
TEXT_NAMES = {"Containerfile", "Dockerfile", "LICENSE", "NOTICE", ".helmignore", ".gitignore"}

SECTION = "\N{SECTION SIGN}"
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S+", re.IGNORECASE)
_MD_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_MD_FILE = re.compile(r"(?<![\w./:@~$%-])((?:\.\.?/)*(?:[\w.-]+/)*[\w-][\w.-]*\.md)(#[\w-]+)?\b")
# A path climbing out of the checkout into a directory: whatever it names, the repository
# does not hold it (a bare `../name` is a relative link target in code, not a citation).
_OUTSIDE = re.compile(r"(?<![\w./-])((?:\.\./)+[\w-][\w.-]*/[\w./-]*)")
_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _top_dirs() -> tuple[str, ...]:
    """The directories a citation of a repository path starts with."""
    return tuple(
        sorted(
            p.name
            for p in REPO.iterdir()
            if p.is_dir() and not p.name.startswith(".") and p.name not in SKIP_DIRS
        )
    )


def _repo_path_pattern(tops: tuple[str, ...]) -> re.Pattern[str]:
    # A path under a top-level directory, up to a character no path of ours holds
    # (`{` of `data/{good,bad}`, `*` of a glob): what is left must exist.
    names = "|".join(re.escape(t) for t in tops)
    return re.compile(rf"(?<![\w./:@~$%-])((?:{names})/[\w./-]*)(#[\w-]+)?")


def citations(line: str, markdown: bool, tops: tuple[str, ...]) -> list[tuple[str, str]]:
    """(path, anchor) cited on one line; a lone `§` is cited as the path `§`."""
    found: list[tuple[str, str]] = []
    if SECTION in line:
        found.append((SECTION, ""))
    line = _URL.sub(" ", line)
    if markdown:
        for match in _MD_LINK.finditer(line):
            target = match.group(1)
            if re.match(r"[a-z][a-z0-9+.-]*:", target, re.IGNORECASE):
                continue  # mailto: and the like; URLs are gone already
            path, _, anchor = target.partition("#")
            found.append((path, anchor))
        line = _MD_LINK.sub(" ", line)
    for match in _MD_FILE.finditer(line):
        if not _quoted(line, match):
            found.append((match.group(1), (match.group(2) or "")[1:]))
    for match in _repo_path_pattern(tops).finditer(line):
        path = match.group(1).rstrip(".")
        if path.endswith(".md") or _quoted(line, match):
            continue  # the Markdown rule has it; a string literal is code, run by its tests
        if line[match.end(1) : match.end(1) + 1] in ("*", "?"):
            path = path[: path.rfind("/") + 1]  # a glob: its directory must exist
        found.append((path, (match.group(2) or "")[1:]))
    for match in _OUTSIDE.finditer(line):
        path = match.group(1).rstrip(".")
        if not path.endswith(".md") and not _quoted(line, match):
            found.append((path, ""))
    return found


def _quoted(line: str, match: re.Match[str]) -> bool:
    """A string literal holding nothing but the path: code that builds it, not a citation."""
    before, after = line[match.start() - 1 : match.start()], line[match.end() : match.end() + 1]
    return before == after and before in ("'", '"')


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, `-` for spaces."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: dict[str, int] = {}
    out: set[str] = set()
    fenced = False
    for line in path.read_text(encoding="utf-8").splitlines():
        if _FENCE.match(line):
            fenced = not fenced
            continue
        heading = _HEADING.match(line)
        if fenced or not heading:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        out.add(base if count == 0 else f"{base}-{count}")
    return frozenset(out)


def problem(source: Path, path: str, anchor: str, root: Path) -> str | None:
    """Why this citation in `source` points outside the repository, or None."""
    if path == SECTION:
        return "a numbered section of a document the repository does not hold"
    if not path:  # `[x](#anchor)`: a heading of this very file
        target: Path | None = source
    else:
        candidates = [source.parent / path]
        if not path.startswith("."):
            candidates.append(root / path)
        target = next((c for c in candidates if c.exists()), None)
    if target is None:
        return "no such file in the repository"
    resolved = target.resolve()
    if resolved != root and root not in resolved.parents:
        return "outside the repository"
    if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
        return f"no heading #{anchor} in {resolved.relative_to(root)}"
    return None


def text_files(root: Path) -> Iterator[Path]:
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in rel.parts):
            continue
        if not path.is_file() or path.resolve() == THIS:
            continue
        if path.suffix in TEXT_SUFFIXES or path.name in TEXT_NAMES:
            yield path


def scan(root: Path) -> list[str]:
    tops = _top_dirs()
    out: list[str] = []
    for source in text_files(root):
        markdown = source.suffix == ".md"
        lines = source.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, start=1):
            for path, anchor in citations(line, markdown, tops):
                why = problem(source, path, anchor, root)
                if why:
                    cited = path + (f"#{anchor}" if anchor else "")
                    out.append(f"{source.relative_to(root)}:{number}: {cited}: {why}")
    return out


TOPS = ("docs", "tests", "nvlib", "gfd", "cdi")


@pytest.mark.parametrize(
    ("line", "markdown", "expected"),
    [
        pytest.param("see (notes/plan.md §17.1)", False, [("§", ""), ("notes/plan.md", "")],
                     id="md-path-and-section"),
        pytest.param("the rule of plan.md §9", False, [("§", ""), ("plan.md", "")],
                     id="bare-md-and-section"),
        pytest.param("as upstream does (§13.4)", False, [("§", "")], id="lone-section"),
        pytest.param("PLAN.md \"The loop\"", False, [("PLAN.md", "")], id="upper-case-md"),
        pytest.param("../notes/rules/plan.md", False, [("../notes/rules/plan.md", "")],
                     id="md-outside"),
        pytest.param("see ../tools/gen.py.", False, [("../tools/gen.py", "")],
                     id="path-outside"),
        pytest.param('Path(__file__) / "../x.py"', False, [], id="outside-string-literal"),
        pytest.param("a symlink to ../card1", False, [], id="relative-link-target"),
        pytest.param("[Modes](docs/cdi.md#modes)", True, [("docs/cdi.md", "modes")],
                     id="md-link-anchor"),
        pytest.param("[here](#simulated-nodes)", True, [("", "simulated-nodes")],
                     id="md-link-same-file"),
        pytest.param("[x](foo) in a docstring", False, [], id="md-link-only-in-md"),
        pytest.param("see docs/labels.md#mixed-nodes.", False, [("docs/labels.md", "mixed-nodes")],
                     id="bare-md-anchor"),
        pytest.param("`tests/support/helm_chart.py`,", False, [("tests/support/helm_chart.py", "")],
                     id="repo-path"),
        pytest.param("tests/cdi/data/{good,bad}/", False, [("tests/cdi/data/", "")],
                     id="stops-at-brace"),
        pytest.param("nvlib/sim/profiles/*.yaml", False, [("nvlib/sim/profiles/", "")],
                     id="stops-at-glob"),
        pytest.param("nvlib/fsutil.py.", False, [("nvlib/fsutil.py", "")], id="trailing-stop"),
        pytest.param("cdi/v1/api_pb2*.py", False, [("cdi/v1/", "")], id="glob-in-name"),
        pytest.param('REPO / "docs" / "labels.md#x"', False, [], id="string-literal"),
        pytest.param('"""docs/labels.md, the reference', False, [("docs/labels.md", "")],
                     id="docstring-start"),
        pytest.param("https://example.org/notes/plan.md and /var/run/cdi/nvidia.yaml", False,
                     [], id="url-and-absolute-path"),
        pytest.param("nvidia.com/gpu and features.d/gfd and mig.nvidia-cdi/x", False, [],
                     id="not-repo-paths"),
        pytest.param("[CDI](https://github.com/cncf-tags/container-device-interface)", True,
                     [], id="md-link-url"),
    ],
)  # fmt: skip
def test_citations(line: str, markdown: bool, expected: list[tuple[str, str]]) -> None:
    assert citations(line, markdown, TOPS) == expected


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        pytest.param("Simulated nodes", "simulated-nodes", id="words"),
        pytest.param("`--watch`", "--watch", id="code"),
        pytest.param("A GPU model: `nodeSelector` on `nvidia.com/gpu.product`",
                     "a-gpu-model-nodeselector-on-nvidiacomgpuproduct", id="punctuation"),
        pytest.param("Not in this chart (upstream has them)",
                     "not-in-this-chart-upstream-has-them", id="parentheses"),
    ],
)  # fmt: skip
def test_slug(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_problem_resolves_against_the_file_then_the_root(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# Title\n\n## Some part\n\n```\n# not one\n```\n")
    (tmp_path / "docs" / "b.md").write_text("")
    (tmp_path / "code.py").write_text("")
    doc, code = tmp_path / "docs" / "b.md", tmp_path / "code.py"
    assert problem(doc, "a.md", "some-part", tmp_path) is None  # beside the citing file
    assert problem(code, "docs/a.md", "title", tmp_path) is None  # from the root
    assert problem(code, "a.md", "", tmp_path) == "no such file in the repository"
    assert problem(doc, "../../x.md", "", tmp_path) == "no such file in the repository"
    assert problem(code, "docs/a.md", "not-one", tmp_path) == "no heading #not-one in docs/a.md"
    assert problem(doc, "", "title", tmp_path) == "no heading #title in docs/b.md"
    assert problem(code, "§", "", tmp_path) is not None


def test_every_citation_points_inside_the_repository() -> None:
    bad = scan(REPO)
    assert not bad, f"{len(bad)} citations point outside the repository:\n" + "\n".join(bad)
