"""The built-in profiles, pre-parsed: `python -m nvlib.sim.bundle` regenerates `_bundled.py`.

The YAML files in profiles/ are the source of truth. Parsing one costs a YAML parser
(15 ms to import), the profile checks and uuid5 (hashlib) for the derived UUIDs, so
the parsed records are written once, as Python source, to `_bundled.py`: its
bytecode is cached like any module's, and `load_profile` builds a built-in profile
from it in microseconds. Run this after editing a built-in YAML file (or the parser);
tests/nvlib/test_sim_bundle.py fails while the committed bundle is stale.

    python -m nvlib.sim.bundle           # rewrite nvlib/sim/_bundled.py
    python -m nvlib.sim.bundle --check   # exit 1 if it is stale

The output is plain code that `ruff format` leaves as it is: a call fits on one line
or has one argument per line and a trailing comma. Values that recur (the MIG profile
tables of a model) are named once at the top.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

from nvlib.record import Record
from nvlib.sim.parse import parse_profile
from nvlib.sim.profile import BUILTIN_PROFILES, Profile, read_yaml

PROFILES_DIR = Path(__file__).with_name("profiles")  # the source: one YAML file each
BUNDLE = Path(__file__).with_name("_bundled.py")
_WIDTH = 100  # pyproject's line-length
_SHARE_MIN = 40  # characters: a shorter recurring value is repeated, not named

_HEADER = '''\
"""The built-in profiles, parsed: generated from profiles/*.yaml by `python -m nvlib.sim.bundle`.

Do not edit: change the YAML file and regenerate. load_profile builds a built-in
profile from here, without a YAML parser; tests/nvlib/test_sim_bundle.py fails while
this file is stale.
"""

'''


def parse_builtin(name: str) -> Profile:
    """A built-in profile parsed from its YAML file, as the bundle must hold it."""
    return parse_profile(read_yaml(PROFILES_DIR / f"{name}.yaml", name), name, None)


def render() -> str:
    """The text of `_bundled.py` for the YAML files as they are now."""
    profiles = [parse_builtin(name) for name in BUILTIN_PROFILES]
    writer = _Writer(profiles)
    functions = [
        f"def {_function(p.name)}() -> Profile:\n" + writer.statement("    return ", p, "", "    ")
        for p in profiles
    ]
    table = "".join(f'    "{p.name}": {_function(p.name)},\n' for p in profiles)
    return (
        _HEADER
        + _imports(sorted(writer.classes))
        + "".join(writer.shared_lines)
        + ("\n\n" if writer.shared_lines else "\n")
        + "\n\n".join(functions)
        + "\n\n"
        + f"PROFILES = {{\n{table}}}\n"
    )


def _function(name: str) -> str:
    return "_" + name.replace("-", "_")


def _imports(names: list[str]) -> str:
    line = f"from nvlib.sim.profile import {', '.join(names)}\n"
    if len(line) <= _WIDTH + 1:
        return line + "\n"
    return "from nvlib.sim.profile import (\n" + "".join(f"    {n},\n" for n in names) + ")\n\n"


class _Writer:
    """Python source for records, tuples and scalars; recurring values named once."""

    def __init__(self, profiles: list[Profile]) -> None:
        self.classes: set[str] = {"Profile"}
        self.names: dict[object, str] = {}  # by _key
        self.shared_lines: list[str] = []
        counts: Counter[object] = Counter()
        for profile in profiles:
            self._count(profile, counts)
        self.recurring = {k for k, n in counts.items() if n > 1}

    def _count(self, value: object, counts: Counter[object]) -> None:
        if isinstance(value, tuple) and value:
            key = _key(value)
            counts[key] += 1
            if counts[key] == 1:  # the parts of a repeat are counted once
                for item in value:
                    self._count(item, counts)

    def _ref(self, value: object) -> str | None:
        """The name of a recurring value, defined (its parts first) on first use."""
        if not isinstance(value, tuple) or not value:
            return None
        key = _key(value)
        if key not in self.recurring:
            return None
        if key not in self.names:
            if len(self.inline(value, share=False)) < _SHARE_MIN:  # names its parts
                self.recurring.discard(key)
                return None
            name = self.names[key] = f"_S{len(self.names)}"
            self.shared_lines.append(self.statement(f"{name} = ", value, "", share=False))
        return self.names[key]

    def inline(self, value: object, share: bool = True) -> str:
        ref = self._ref(value) if share else None
        if ref is not None:
            return ref
        if isinstance(value, Record):
            self.classes.add(type(value).__name__)
            parts = ", ".join(self.inline(v) for v in value)
            return f"{type(value).__name__}({parts})"
        if isinstance(value, tuple):
            items = [self.inline(v) for v in value]
            return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
        return _scalar(value)

    def statement(
        self, prefix: str, value: object, suffix: str, indent: str = "", share: bool = True
    ) -> str:
        """`prefix value suffix` in lines of at most _WIDTH characters, each ending in \\n.

        What does not fit on one line is split as ruff formats it: one item per line,
        each followed by a comma.
        """
        flat = self.inline(value, share)
        if len(prefix) + len(flat) + len(suffix) <= _WIDTH or flat in self.names.values():
            return f"{prefix}{flat}{suffix}\n"
        assert isinstance(value, tuple), value  # scalars are not split
        opener = f"{type(value).__name__}(" if isinstance(value, Record) else "("
        inner = indent + "    "
        body = "".join(self.statement(inner, item, ",", inner) for item in value)
        return f"{prefix}{opener}\n{body}{indent}){suffix}\n"


def _key(value: object) -> object:
    """Equal only for values of the same types throughout: PciAddress(0, 2, 4, 6) is not
    the placement starts (0, 2, 4, 6), nor True 1."""
    if isinstance(value, tuple):
        return (type(value).__name__, *map(_key, value))
    return (type(value).__name__, value)


def _scalar(value: object) -> str:
    if isinstance(value, str):
        text = repr(value)  # single-quoted only if it holds a double quote, or no quote
        return f'"{text[1:-1]}"' if text[0] == "'" and '"' not in value else text
    if isinstance(value, bytes):
        return 'b"' + "".join(f"\\x{b:02x}" for b in value) + '"'
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    raise TypeError(f"cannot bundle {type(value).__name__}: {value!r}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["--check"]):
        print("usage: python -m nvlib.sim.bundle [--check]", file=sys.stderr)
        return 2
    text = render()
    current = BUNDLE.read_text(encoding="utf-8") if BUNDLE.is_file() else None
    if args == ["--check"]:
        if text != current:
            print(f"{BUNDLE} is stale: run python -m nvlib.sim.bundle", file=sys.stderr)
            return 1
        return 0
    if text != current:
        BUNDLE.write_text(text, encoding="utf-8")
        print(f"wrote {BUNDLE}")
    else:
        print(f"{BUNDLE} is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
