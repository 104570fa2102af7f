"""Start-up pieces weighed on the real NVML path: `python bench/run.py startup` (or
`python bench/startup_costs.py`).

The GFD oneshot runs once on the real path (realpath.py: the stub libnvidia-ml, no
simulator) and reports every module it imported and the record classes it defined.
Then each piece is timed in a fresh interpreter that has first imported all those
modules, so that it costs only what it would add to that command:

- `import typing`; `import dataclasses` after typing; `import __future__` (what
  `from __future__ import annotations` runs). A module that is loaded already (an
  editable install's finder imports __future__ at start) is taken out of sys.modules
  first, and the line says so.
- defining the real path's record classes three ways: its NamedTuple classes (the
  device model) and its Plain classes, each set as typing.NamedTuple,
  @dataclass(frozen=True) and nvlib.record.Plain classes (frozen too, like for like)
  with the same field counts and annotations; every default is None. Annotations are
  strings, as in those modules (`from __future__ import annotations`). typing or
  dataclasses is imported before the clock starts, so add `import dataclasses` to the
  dataclass lines to weigh what Plain saves (docs/architecture.md#records).

Each figure is the median over BENCH_REPEAT (default 15) interpreters, the pieces'
runs interleaved; nothing here is a pass/fail test.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from realpath import GFD, real_path
from timing import REPEAT

# Runs GFD's main as the console script does; on exit it writes the modules imported
# and, for each NamedTuple or Plain class of the project, its kind, fields, annotations,
# defaults.
_SURVEY = """
import atexit, json, sys
def survey():
    from nvlib.record import Plain
    project = ("nvlib", "gfd", "cdi", "deviceplugin", "configmanager")
    classes = []
    for module in list(sys.modules.values()):
        if module is None or module.__name__.split(".")[0] not in project:
            continue
        for cls in list(vars(module).values()):
            if not isinstance(cls, type) or cls.__module__ != module.__name__:
                continue
            if issubclass(cls, tuple) and hasattr(cls, "_fields"):
                kind, defaults = "namedtuple", cls._field_defaults
            elif issubclass(cls, Plain) and cls is not Plain:
                kind, defaults = "plain", cls._defaults
            else:
                continue
            notes = cls.__dict__.get("__annotations__", {})
            fields = [[f, str(notes.get(f, "object")), f in defaults] for f in cls._fields]
            classes.append([kind, f"{cls.__module__}.{cls.__qualname__}", fields])
    with open(OUT, "w") as f:
        json.dump({"modules": sorted(sys.modules), "classes": classes}, f)
atexit.register(survey)
sys.argv = ["gpu-feature-discovery", *sys.argv[1:]]
from gfd.__main__ import main
sys.exit(main())
"""

_TIMED = """
import importlib, sys, time
for name in {modules!r}:
    importlib.import_module(name)
{setup}
start = time.perf_counter()
{timed}
print(time.perf_counter() - start)
"""


def _survey(env: dict[str, str], gfd: list[str]) -> tuple[list[str], list[list[object]]]:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "survey.json"
        script = f"OUT = {str(out)!r}\n{_SURVEY}"
        subprocess.run(
            [sys.executable, "-c", script, *gfd[1:]],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        found = json.loads(out.read_text())
    modules = [m for m in found["modules"] if m != "__main__"]
    if any(m == "nvlib.sim" or m.startswith("nvlib.sim.") for m in modules):
        raise SystemExit("the simulator was imported: this is not the real NVML path")
    return modules, found["classes"]


_STYLES = {  # how the output names it, its set-up, a class's head
    "namedtuple": ("typing.NamedTuple", "import typing", "class C{i}(typing.NamedTuple):"),
    "dataclass": (
        "@dataclass(frozen=True)",
        "import dataclasses",
        "@dataclasses.dataclass(frozen=True)\nclass C{i}:",
    ),
    "plain": (
        "nvlib.record.Plain, frozen=True",
        "from nvlib.record import Plain",
        "class C{i}(Plain, frozen=True):",
    ),
}


def _classes(shapes: list[list[list[object]]], head: str) -> str:
    """Source defining one class per shape (its fields: name, annotation, has default)."""
    lines = []
    for i, fields in enumerate(shapes):
        lines.append(head.format(i=i))
        lines += [
            f"    {f}: {note!r}" + (" = None" if default else "") for f, note, default in fields
        ]
        if not fields:
            lines.append("    pass")
    return "\n".join(lines)


def _pieces(modules: list[str], classes: list[list[object]]) -> list[tuple[str, str, str, str]]:
    """Each piece as (group heading, name, set-up, timed code)."""
    pieces = []
    for module, after in (("typing", ""), ("dataclasses", "typing"), ("__future__", "")):
        name = f"import {module}" + (f", after {after}" if after else "")
        setup = f"import {after}" if after else ""
        if module in modules:  # site or the path itself loaded it: time a fresh import
            name += " (loaded already; taken out to time it)"
            setup += f"\nsys.modules.pop({module!r})"
        pieces.append(("", name, setup, f"import {module}"))
    groups = {
        "NamedTuple classes": [c[2] for c in classes if c[0] == "namedtuple"],
        "Plain classes": [c[2] for c in classes if c[0] == "plain"],
    }
    for what, shapes in groups.items():
        counts = "/".join(str(len(s)) for s in shapes)
        heading = f"defining the real path's {len(shapes)} {what} (fields {counts}) as"
        for name, setup, head in _STYLES.values():
            pieces.append((heading, name, setup, _classes(shapes, head)))
    return pieces


def main() -> None:
    with real_path() as (env, gfd):
        if not GFD.exists():
            raise SystemExit(f"{GFD} is missing: install the project into this venv")
        modules, classes = _survey(env, gfd)
        pieces = _pieces(modules, classes)
        scripts = [_TIMED.format(modules=modules, setup=p[2], timed=p[3]) for p in pieces]
        samples: list[list[float]] = [[] for _ in scripts]
        for _ in range(REPEAT):
            for script, times in zip(scripts, samples, strict=True):
                result = subprocess.run(
                    [sys.executable, "-c", script],
                    env=env,
                    check=True,
                    capture_output=True,
                    text=True,
                    cwd=tempfile.gettempdir(),
                )
                times.append(float(result.stdout))
    print(
        f"start-up pieces on the real NVML path, each in a fresh interpreter after the "
        f"path's {len(modules)} modules (median of {REPEAT}):",
        flush=True,
    )
    heading = ""
    for (group, name, _, _), times in zip(pieces, samples, strict=True):
        if group != heading:
            heading = group
            print(f"  {heading}", flush=True)
        indent = "    " if group else "  "
        figure = statistics.median(times) * 1000
        print(f"{indent}{name:<{62 - len(indent)}} {figure:7.3f} ms", flush=True)


if __name__ == "__main__":
    main()
