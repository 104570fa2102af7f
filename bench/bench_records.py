"""What the record kinds cost GFD's real start (no --nvml-mock): `python bench/bench_records.py`.

docs/architecture.md ("Records") keeps `Plain` only while it saves at least 5 ms there.
Each figure is the median, over fresh interpreters with their runs interleaved, of one
timed step taken after the modules the real `gpu-feature-discovery` path imports from
outside the project (pynvml, logging, json, ... and typing) are loaded:

- records-plain: `import nvlib.record`, then the path's `Plain` classes (their fields,
  annotations and defaults, taken from the real classes) defined as `Plain`s;
- records-dataclass: `import dataclasses`, then the same classes as `@dataclass`es, and
  `import dataclasses` alone;
- records-namedtuple: `import nvlib.model`, the device model's `typing.NamedTuple`s.

The children compile the project's modules once into a temporary pycache prefix (the
tree itself gets none) and read them from there, as an installed image does.
Nothing here is a pass/fail test.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile

from timing import REPEAT

PROJECT = ("nvlib", "gfd", "cdi", "deviceplugin", "configmanager")
GFD_PATH = ("gfd.__main__", "gfd.daemon", "gfd.setup")

# Run in the parent's child: the real path's outside modules, and its Plain classes as
# (name, frozen, [(field, annotation, default kind)]). A default's value does not change
# what defining the class costs, so only its kind travels: none, a value or a factory.
_SURVEY = """
import json, sys
for name in {modules!r}:
    __import__(name)
from nvlib.record import Plain, factory

def kind(cls, name):
    if name not in cls._defaults:
        return "none"
    return "factory" if type(cls._defaults[name]) is factory else "value"

classes, todo = [], list(Plain.__subclasses__())
while todo:
    cls = todo.pop(0)
    todo += cls.__subclasses__()
    if cls.__module__.split(".")[0] in {project!r}:
        frozen = cls.__hash__ is not None
        own = cls.__dict__.get("__annotations__", {{}})
        fields = [(n, own.get(n, "object"), kind(cls, n)) for n in cls._fields]
        classes.append((cls.__name__, frozen, fields))
outside = sorted(m for m in sys.modules if m.split(".")[0] not in {project!r})
print(json.dumps([outside, classes]))
"""

_PRELUDE = """
import importlib, sys, time
for name in {modules!r}:
    try:
        importlib.import_module(name)
    except ImportError:  # a platform's own module that this platform lacks
        pass
import typing
CLASSES = {classes!r}
start = time.perf_counter()
"""

_PLAIN = """
from nvlib.record import Plain, factory
for name, frozen, fields in CLASSES:
    body = {"__annotations__": {f: ann for f, ann, _ in fields}}
    body.update((f, factory(list) if k == "factory" else 0) for f, _, k in fields if k != "none")
    type(name, (Plain,), body, frozen=frozen)
"""

_DATACLASS = """
import dataclasses
for name, frozen, fields in CLASSES:
    specs = []
    for f, ann, k in fields:
        if k == "none":
            specs.append((f, ann))
        else:
            make = {"default_factory": list} if k == "factory" else {"default": 0}
            specs.append((f, ann, dataclasses.field(**make)))
    dataclasses.make_dataclass(name, specs, frozen=frozen)
"""

_IMPORT_DATACLASSES = "import dataclasses\n"
_IMPORT_MODEL = "import nvlib.model\n"
_DONE = "print((time.perf_counter() - start) * 1000)\n"


def _child(code: str, pycache: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = pycache
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tempfile.gettempdir(),
        env=env,
    )
    return done.stdout


def _medians(programs: dict[str, str], repeat: int, pycache: str) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(repeat + 1):  # the first round writes the .pyc files and warms the cache
        for name, code in programs.items():
            samples[name].append(float(_child(code, pycache)))
    return {name: statistics.median(values[1:]) for name, values in samples.items()}


def main() -> None:
    with tempfile.TemporaryDirectory() as pycache:
        _report(pycache)


def _report(pycache: str) -> None:
    survey = _SURVEY.format(modules=GFD_PATH, project=PROJECT)
    outside, classes = json.loads(_child(survey, pycache))
    prelude = _PRELUDE.format(modules=outside, classes=classes)
    ms = _medians(
        {
            "plain": prelude + _PLAIN + _DONE,
            "dataclass": prelude + _DATACLASS + _DONE,
            "import": prelude + _IMPORT_DATACLASSES + _DONE,
            "model": prelude + _IMPORT_MODEL + _DONE,
        },
        max(REPEAT, 15),
        pycache,
    )
    count = len(classes)
    saved = ms["dataclass"] - ms["plain"]
    print(f"{f'records-plain ({count} classes)':<32} {ms['plain']:7.2f} ms", flush=True)
    print(
        f"{f'records-dataclass ({count} classes)':<32} {ms['dataclass']:7.2f} ms"
        f"  (import dataclasses alone {ms['import']:.2f} ms)",
        flush=True,
    )
    judged = "ok" if saved >= 5 else "UNDER"
    print(f"{'records-plain saves':<32} {saved:7.2f} ms  goal >= 5 ms  {judged}", flush=True)
    print(f"{'records-namedtuple nvlib.model':<32} {ms['model']:7.2f} ms", flush=True)


if __name__ == "__main__":
    main()
