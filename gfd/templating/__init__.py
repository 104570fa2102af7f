"""Custom labels from sandboxed Jinja2 templates (`--label-templates DIR|builtin`).

Every `*.j2` file in the directory compiles once per config load (`load_templates`): a
syntax error there is a start-up error. Each pass renders them in file-name order over
the pass's context (context.py) and adds their `key=value` lines to the built-in labels
(rules.py). A template that fails, in any way, is left out of that pass and logged with
its file and line; the built-in labels and the other templates' labels are written
anyway. docs/labels.md is the user's side of this.

Only this package imports jinja2, and only a config load with templates imports it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from jinja2 import Template, TemplateError, TemplateSyntaxError

from gfd.templating.context import FILTERS, build_context
from gfd.templating.rules import RuleError, parse_output
from gfd.templating.sandbox import LabelSandbox, RenderBudgetExceeded
from nvlib.config import Config, ConfigError
from nvlib.model import Gpu, Machine

if TYPE_CHECKING:
    from nvlib.topology import NvLink  # read through read_nvlinks: pynvml stays unimported

log = logging.getLogger(__name__)

BUILTIN = "builtin"
BUILTIN_DIRECTORY = Path(__file__).resolve().parent.parent / "templates"
RENDER_BUDGET_SECONDS = 0.2  # per template; the shipped ones take well under 1 ms
MAX_OUTPUT_CHARS = 65536  # NFD skips a feature file larger than this anyway
_OPTION = "--label-templates"

__all__ = [
    "BUILTIN",
    "BUILTIN_DIRECTORY",
    "LabelTemplates",
    "RenderBudgetExceeded",
    "TemplateFailure",
    "TemplateLoadError",
    "load_templates",
    "resolve_directory",
]


class TemplateLoadError(ConfigError):
    """The templates cannot be loaded: a start-up error, as a bad config is."""


class TemplateFailure(RuntimeError):
    """One template failed one pass; the text names its file and, where known, line."""

    def __init__(self, filename: str, line: int | None, reason: str) -> None:
        where = f"{filename}:{line}" if line is not None else filename
        super().__init__(f"label template {where}: {reason}")
        self.filename, self.line, self.reason = filename, line, reason


def resolve_directory(source: str) -> Path:
    """`builtin` names the shipped templates; anything else is a directory path."""
    return BUILTIN_DIRECTORY if source == BUILTIN else Path(source)


def _template_files(directory: Path) -> list[Path]:
    """`*.j2` in the directory, by name; dot-files (a ConfigMap's `..data`) are not."""
    try:
        entries = sorted(directory.iterdir(), key=lambda p: p.name)
    except OSError as err:
        raise TemplateLoadError(
            _OPTION, str(directory), f"cannot read the directory: {err.strerror or err}"
        ) from err
    return [p for p in entries if p.name.endswith(".j2") and not p.name.startswith(".")]


class LabelTemplates:
    """The compiled templates of one config load and the rules their labels follow."""

    def __init__(
        self,
        directory: Path,
        namespaces: Collection[str] = (),
        *,
        budget: float = RENDER_BUDGET_SECONDS,
    ) -> None:
        if not directory.is_dir():
            raise TemplateLoadError(_OPTION, str(directory), "not a directory")
        self.directory = directory
        self.namespaces = frozenset(namespaces)
        self.budget = budget
        self.env = LabelSandbox(directory, FILTERS)
        self.sources: dict[str, str] = {}  # by file name, to point at a bad line
        self.templates: list[Template] = [
            self._compile(path) for path in _template_files(directory)
        ]
        # NVLinks cost NVML calls every pass: read them only when a template (or a file
        # one includes) names them.
        self.wants_nvlinks = _any_file_mentions(directory, "nvlinks")
        if not self.templates:
            log.warning("No label templates (*.j2) in %s", directory)

    def _compile(self, path: Path) -> Template:
        try:
            template = self.env.get_template(path.name)
            self.sources[template.filename or ""] = path.read_text(encoding="utf-8")
            return template
        except TemplateSyntaxError as err:
            where = f"{path}:{err.lineno}" if err.lineno else str(path)
            raise TemplateLoadError(
                _OPTION, str(path), err.message or "", message=f"label template {where}: {err}"
            ) from err
        except TemplateError as err:
            raise TemplateLoadError(
                _OPTION, str(path), str(err), message=f"label template {path}: {err}"
            ) from err

    @property
    def names(self) -> list[str]:
        return [t.name or "" for t in self.templates]

    # -- one pass ----------------------------------------------------------------------

    def labels(
        self,
        machine: Machine,
        config: Config,
        builtin: Mapping[str, str],
        read_nvlinks: Callable[[Sequence[Gpu]], Sequence[NvLink]] | None = None,
    ) -> dict[str, str]:
        """The labels every template that succeeded adds this pass; failures are logged.

        `read_nvlinks` reads the machine's NVLinks when a template uses them (default:
        nvlib.topology.read_nvlinks through NVML).
        """
        nvlinks: Sequence[NvLink] = ()
        if self.wants_nvlinks and machine.gpus:
            reader = read_nvlinks
            if reader is None:
                from nvlib.topology import read_nvlinks as nvml_reader  # NVML: an edge

                reader = nvml_reader
            try:
                nvlinks = reader(machine.gpus)
            except Exception as err:  # templates must never cost the built-in labels
                log.warning("Label templates see no NVLinks this pass: %s", err)
        context = build_context(machine, config, builtin, nvlinks)
        added: dict[str, str] = {}
        writers: dict[str, str] = {}
        for template in self.templates:
            try:
                produced = self.render(template, context, builtin, writers)
            except TemplateFailure as err:
                log.error("%s; its labels are left out of this pass", err)
                continue
            for key in produced:
                writers[key] = template.filename or ""
            added |= produced
        return added

    def render(
        self,
        template: Template,
        context: Mapping[str, object],
        builtin: Mapping[str, str],
        writers: Mapping[str, str],
    ) -> dict[str, str]:
        """One template's labels, or TemplateFailure naming its file and line."""
        filename = template.filename or template.name or "?"
        self.env.arm(self.budget)
        try:
            text = template.render(context)
        except Exception as err:  # a template is user code: whatever it raises, it failed
            raise TemplateFailure(filename, _error_line(err, filename), _reason(err)) from err
        finally:
            self.env.disarm()
        if len(text) > MAX_OUTPUT_CHARS:
            raise TemplateFailure(
                filename, None, f"renders {len(text)} characters, over {MAX_OUTPUT_CHARS}"
            )
        try:
            return parse_output(text, namespaces=self.namespaces, builtin=builtin, taken=writers)
        except RuleError as err:
            key = err.text.partition("=")[0].strip()
            line = _line_writing(self.sources.get(filename, ""), key)
            if line is None:
                raise TemplateFailure(filename, None, f"output line {err.line}: {err}") from err
            raise TemplateFailure(filename, line, str(err)) from err


def _line_writing(source: str, key: str) -> int | None:
    """The one source line that writes `key`: the key itself, else its longest leading
    part (cut after a `.`, `/`, `-` or `_`) found on exactly one line; None if unsure.

    Jinja2 maps the pieces it renders to template lines only coarsely, so a line of
    output is traced back by its text instead.
    """
    lines = source.splitlines()
    cuts = [len(key)] + [i + 1 for i in range(len(key) - 1, 0, -1) if key[i] in "./-_"]
    for cut in cuts:
        part = key[:cut]
        hits = [n for n, text in enumerate(lines, 1) if part in text]
        if len(hits) == 1:
            return hits[0]
        if hits and cut == len(key):
            return None  # written literally on several lines: do not guess
    return None


def _any_file_mentions(directory: Path, word: str) -> bool:
    """Whether any regular file in the directory (an included helper, say) names `word`."""
    for path in directory.iterdir():
        if path.name.startswith(".") or not path.is_file():
            continue
        try:
            if word in path.read_text(encoding="utf-8"):
                return True
        except (OSError, UnicodeDecodeError):
            continue
    return False


def _error_line(err: BaseException, filename: str) -> int | None:
    """The template line an exception came from: Jinja2 rewrites the traceback so that
    template frames carry the template's file name and line."""
    if isinstance(err, TemplateSyntaxError) and err.lineno:
        return err.lineno  # an included file's syntax error: its own line
    line = None
    tb = err.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _reason(err: BaseException) -> str:
    if isinstance(err, RenderBudgetExceeded):
        return str(err)
    if isinstance(err, TemplateSyntaxError):
        return f"{err.filename or err.name}:{err.lineno}: {err.message}"
    if isinstance(err, RecursionError):
        return "recursion too deep"
    text = str(err)
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def load_templates(source: str, namespaces: Collection[str] = ()) -> LabelTemplates:
    """Compile the templates `--label-templates` names; TemplateLoadError if any fails."""
    templates = LabelTemplates(resolve_directory(source), namespaces)
    log.info(
        "Label templates from %s: %s", templates.directory, ", ".join(templates.names) or "none"
    )
    return templates
