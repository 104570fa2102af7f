"""The Jinja2 sandbox label templates render in, with a render time budget.

`ImmutableSandboxedEnvironment` already refuses internal attributes and any change to a
list, dict or set. On top of it:

- `StrictUndefined`: a misspelt name fails the template instead of rendering empty;
- the loader reads only plain file names inside the templates directory (no `/`, no
  dot-files, and the resolved path stays inside it), so `include` and `import` reach
  nothing else; the context holds only plain data (context.py), so there is no path to
  a file, a socket or a module;
- the time budget: every loop of every template is wrapped, when the template compiles,
  in an iterator that checks the clock at each step, and so are attribute and item
  access, calls and the operators below. A template past its budget stops with
  RenderBudgetExceeded. Rendering stays in the calling thread: no signal, no thread;
- single operations that C code would run to the end without a check are bounded
  before they start: `range()` and `*` repetition to 100 000 items, `**` to 4096-bit
  results, string format widths to 5 digits, and the sizes `batch` (which pads) and
  `slice` (which loops, in Python code no hook sees) take. `center`, `format`, `indent`,
  `wordwrap` and `tojson` (width arguments) and `random` and `lipsum` (labels must not
  change from pass to pass) are not available.

This bounds time, not memory: a template can still build a large string within its
budget, as any template engine can.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from string import Formatter
from typing import Any, TypeGuard

from jinja2 import StrictUndefined, nodes
from jinja2.exceptions import SecurityError, TemplateNotFound
from jinja2.loaders import BaseLoader
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_ITEMS = 100_000
MAX_POWER_BITS = 4096
MAX_WIDTH_DIGITS = 5
_LOOP_FILTER = "_budgeted"  # wraps every `for` loop's iterable; not meant to be written
_REMOVED_FILTERS = ("center", "format", "indent", "wordwrap", "tojson", "random")
_WIDTH_METHODS = frozenset({"center", "ljust", "rjust", "zfill", "expandtabs"})
_SIZED_FILTERS = ("batch", "slice")


class RenderBudgetExceeded(SecurityError):
    """A template ran past its render time budget."""


class DirectoryLoader(BaseLoader):
    """Templates by plain file name from one directory, and from nowhere else.

    A file may be a symlink (a Kubernetes ConfigMap volume is made of them) as long as it
    resolves inside the directory.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.root = directory.resolve()

    def get_source(self, environment: Any, template: str) -> tuple[str, str, Callable[[], bool]]:
        if not template or template.startswith(".") or "/" in template or "\\" in template:
            raise TemplateNotFound(template, f"{template!r} is not a file name in the directory")
        path = self.directory / template
        real = path.resolve()
        if not real.is_relative_to(self.root) or not real.is_file():
            raise TemplateNotFound(template, f"{path} is not a file in {self.directory}")
        try:
            source = real.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise TemplateNotFound(template, f"cannot read {path}: {err}") from err
        return source, str(path), _always_fresh


def _always_fresh() -> bool:
    return True  # compiled once per config load: a changed file waits for SIGHUP


class LabelSandbox(ImmutableSandboxedEnvironment):
    """One per config load; `budget(seconds)` arms the clock around one render."""

    intercepted_binops = frozenset({"*", "**", "%"})

    def __init__(self, directory: Path, filters: dict[str, Callable[..., Any]]) -> None:
        super().__init__(
            loader=DirectoryLoader(directory),
            undefined=StrictUndefined,
            autoescape=False,
            # No compile-time evaluation: a constant `"x" * 10**9` must not run at load.
            optimized=False,
            auto_reload=False,
            cache_size=-1,  # every template of the directory stays compiled
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.deadline = math.inf
        for name in _REMOVED_FILTERS:
            del self.filters[name]
        for name in _SIZED_FILTERS:  # loop or pad in Python to a size the template gives
            self.filters[name] = _bounded_size(self.filters[name])
        self.filters.update(filters)
        self.filters[_LOOP_FILTER] = self._budgeted
        self.globals.pop("lipsum", None)
        self.globals["range"] = _bounded_range

    # -- the clock ---------------------------------------------------------------------

    def arm(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def disarm(self) -> None:
        self.deadline = math.inf

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderBudgetExceeded("ran past its render time budget")

    def _budgeted(self, iterable: Iterable[Any]) -> Iterator[Any]:
        check = self.check
        for item in iterable:
            check()
            yield item

    # -- compile: wrap every loop ------------------------------------------------------

    def compile(
        self,
        source: str | nodes.Template,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        if isinstance(source, str):
            source = self.parse(source, name, filename)
            for loop in source.find_all(nodes.For):
                loop.iter = nodes.Filter(
                    loop.iter, _LOOP_FILTER, [], [], None, None, lineno=loop.iter.lineno
                )
        if raw:  # the overloads want a literal
            return super().compile(source, name, filename, True, defer_init)
        return super().compile(source, name, filename, False, defer_init)

    # -- the sandbox's hooks, each a clock check too -----------------------------------

    def getattr(self, obj: Any, attribute: str) -> Any:
        self.check()
        if isinstance(obj, str) and attribute in ("format", "format_map"):
            _check_format_widths(obj)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self.check()
        return super().getitem(obj, argument)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        __self.check()
        if getattr(__obj, "__name__", None) in _WIDTH_METHODS and isinstance(
            getattr(__obj, "__self__", None), str
        ):
            for value in (*args, *kwargs.values()):
                if isinstance(value, int) and value > MAX_ITEMS:
                    raise SecurityError(f"width {value} is over {MAX_ITEMS}")
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        self.check()
        if operator == "*":
            _check_repeat(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_printf_widths(left)
        return super().call_binop(context, operator, left, right)


def _bounded_size(wrapped: Callable[..., Any]) -> Callable[..., Any]:
    """`batch(n, fill)` pads to n items and `slice(n)` loops n times, unchecked: bound n."""

    def bounded(value: Any, size: Any, *args: Any, **kwargs: Any) -> Any:
        if _is_int(size) and size > MAX_ITEMS:
            raise SecurityError(f"size {size} is over {MAX_ITEMS}")
        return wrapped(value, size, *args, **kwargs)

    return bounded


def _bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_ITEMS:
        raise SecurityError(f"range of {len(numbers)} items is over {MAX_ITEMS}")
    return numbers


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_repeat(left: object, right: object) -> None:
    for seq, count in ((left, right), (right, left)):
        if isinstance(seq, str | list | tuple) and _is_int(count):
            if len(seq) * max(count, 0) > MAX_ITEMS:
                raise SecurityError(f"repetition makes more than {MAX_ITEMS} items")


def _check_power(base: object, exponent: object) -> None:
    if _is_int(base) and _is_int(exponent) and exponent > 0:
        if abs(base).bit_length() * exponent > MAX_POWER_BITS:
            raise SecurityError(f"power makes a number over {MAX_POWER_BITS} bits")


def _check_width_text(text: str) -> None:
    run = 0
    for char in text:
        run = run + 1 if char.isdigit() else 0
        if run > MAX_WIDTH_DIGITS or char == "*":
            raise SecurityError(f"format width over {MAX_WIDTH_DIGITS} digits")


def _check_format_widths(text: str) -> None:
    try:
        fields = list(Formatter().parse(text))
    except ValueError:
        return  # str.format fails on it anyway
    for _, _, spec, _ in fields:
        if spec:
            _check_width_text(spec.replace("*", ""))
            _check_format_widths(spec)  # nested fields: "{:{}}"


def _check_printf_widths(text: str) -> None:
    """`%[(name)][flags][width][.precision]type`: width and precision bounded."""
    i = text.find("%")
    while i != -1:
        j = i + 1
        if j < len(text) and text[j] == "(":
            j = text.find(")", j) + 1 or len(text)
        k = j
        while k < len(text) and (text[k] in "#0- +.*" or text[k].isdigit()):
            k += 1
        _check_width_text(text[j:k])
        i = text.find("%", k + 1)  # past the conversion character (`%%` included)
