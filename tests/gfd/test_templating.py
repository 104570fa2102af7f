"""Label templates (gfd/templating): context, filters, output rules, sandbox, loading.

Matrix: the context of hand-built machines, every name pinned (MIG, fabric, NVLinks,
sharing, a machine without NVML); the two filters over their edge values; each output
rule with its message (line shape, namespace, key, value, built-in key, duplicate within
and between templates); the sandbox's refusals and the time budget (a loop that would
run for hours stops within a generous deadline); loading (syntax error with file and
line, missing directory, includes confined to the directory, ConfigMap-style symlinks,
dot-files); and failure isolation (a failing template costs neither the built-in labels
nor the other templates' labels). The shipped templates' table over the built-in
machines is tests/gfd/test_shipped_templates.py.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest
from gpu_builders import A100, config, dgx_a100, gpu, machine

from gfd.labels import compute_labels
from gfd.templating import (
    BUILTIN_DIRECTORY,
    LabelTemplates,
    TemplateLoadError,
    load_templates,
    resolve_directory,
)
from gfd.templating.context import build_context, gib, label_value
from gfd.templating.rules import RuleError, parse_output
from nvlib.model import Fabric
from nvlib.topology import NvLink

UUID = "7b968a6d-c8aa-45e1-9e07-e1e51be99c31"


def _templates(tmp_path: Path, files: dict[str, str], **kwargs: object) -> LabelTemplates:
    directory = tmp_path / "templates"
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return LabelTemplates(directory, **kwargs)  # type: ignore[arg-type]


def _render(
    tmp_path: Path, files: dict[str, str], m: object = None, cfg: object = None, **kwargs: object
) -> dict[str, str]:
    m = m or dgx_a100()
    cfg = cfg or config()
    builtin = compute_labels(m, cfg)  # type: ignore[arg-type]
    return _templates(tmp_path, files, **kwargs).labels(m, cfg, builtin)  # type: ignore[arg-type]


# -- context -----------------------------------------------------------------------------


def test_context_of_a_gpu() -> None:
    m = machine(gpu(0, fabric=Fabric(UUID, 3))._replace(numa_node=1))
    ctx = build_context(m, config(), {"nvidia.com/gpu.count": "1"})
    assert ctx["gpus"] == [
        {
            "index": 0,
            "uuid": "GPU-00000000-1111-2222-3333-444444444444",
            "name": A100,
            "product": "NVIDIA-A100-SXM4-40GB",
            "memory_mib": 40960,
            "compute_capability": "8.0",
            "compute_major": 8,
            "compute_minor": 0,
            "family": "ampere",
            "mig_capable": True,
            "mig_enabled": False,
            "mig_devices": [],
            "fabric": {"cluster_uuid": UUID, "clique_id": 3, "clique": f"{UUID}.3"},
            "numa_node": 1,
            "pci_bus_id": "0000:07:00.0",
            "pci_class": "0x030200",
            "minor": 0,
            "nvlinks": 0,
        }
    ]
    assert ctx["machine"] == {
        "driver_version": "550.54.15",
        "cuda_version": "12.4",
        "cuda_major": 12,
        "cuda_minor": 4,
        "machine_type": "DGXA100 920-23687-2530-000",
        "gpus": ctx["gpus"],
    }
    assert ctx["labels"] == {"nvidia.com/gpu.count": "1"}
    assert ctx["mig_strategy"] == "none"
    assert ctx["sharing"] == {"strategy": "none", "replicas": 1, "resources": []}
    assert ctx["nvlinks"] == []
    assert sorted(ctx) == ["gpus", "labels", "machine", "mig_strategy", "nvlinks", "sharing"]


def test_context_of_mig_devices() -> None:
    m = machine(gpu(0, migs=("1g.5gb+me", "3g.20gb")))
    (first, second) = build_context(m, config(), {})["gpus"][0]["mig_devices"]  # type: ignore[index]
    assert first == {
        "index": 0,
        "uuid": "MIG-00000000-0000-0000-0000-000000000000",
        "profile": "1g.5gb+me",
        "label_profile": "1g.5gb.me",
        "memory_mib": 4864,
        "multiprocessors": 14,
        "gi_slices": 1,
        "ci_slices": 1,
        "copy_engines": 1,
        "decoders": 1,
        "encoders": 0,
        "jpegs": 1,
        "ofas": 1,
    }
    assert second["profile"] == "3g.20gb"


def test_context_of_nvlinks() -> None:
    links = [
        NvLink(0, 0, "0000:c4:00.0", None),
        NvLink(0, 1, "0000:08:00.0", 1),
        NvLink(1, 0, "0000:07:00.0", 0),
    ]
    ctx = build_context(machine(gpu(0), gpu(1)), config(), {}, links)
    assert ctx["nvlinks"] == [
        {"gpu": 0, "link": 0, "remote_pci_bus_id": "0000:c4:00.0", "peer": None},
        {"gpu": 0, "link": 1, "remote_pci_bus_id": "0000:08:00.0", "peer": 1},
        {"gpu": 1, "link": 0, "remote_pci_bus_id": "0000:07:00.0", "peer": 0},
    ]
    assert [g["nvlinks"] for g in ctx["gpus"]] == [2, 1]  # type: ignore[index]


def test_context_of_sharing() -> None:
    cfg = config(
        "version: v1\nsharing:\n  timeSlicing:\n    resources:\n"
        "    - {name: nvidia.com/gpu, replicas: 4}\n"
    )
    assert build_context(dgx_a100(), cfg, {})["sharing"] == {
        "strategy": "time-slicing",
        "replicas": 4,
        "resources": [{"name": "nvidia.com/gpu", "replicas": 4, "rename": ""}],
    }


def test_context_without_nvml() -> None:
    """A null manager's machine: no GPUs, no driver, no CUDA, no machine type."""
    ctx = build_context(machine(driver="", cuda=0, machine_type=None), config(), {})
    assert ctx["machine"] == {
        "driver_version": "",
        "cuda_version": "",
        "cuda_major": 0,
        "cuda_minor": 0,
        "machine_type": "",
        "gpus": [],
    }


def test_context_of_a_gpu_nvml_knows_little_of() -> None:
    (ctx,) = build_context(machine(gpu(0, memory_bytes=None, cc=(0, 0), pci_class=None)),
                           config(), {})["gpus"]  # type: ignore[misc]  # fmt: skip
    assert (ctx["memory_mib"], ctx["compute_capability"], ctx["family"], ctx["pci_class"]) == (
        0,
        "",
        "",
        "",
    )


# -- filters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("NVIDIA A100-SXM4-40GB", "NVIDIA-A100-SXM4-40GB", id="spaces"),
        pytest.param("NVIDIA TITAN X (Pascal)", "NVIDIA-TITAN-X-Pascal", id="brackets"),
        pytest.param(12, "12", id="number"),
        pytest.param("", "", id="empty"),
        pytest.param("-a-", "a", id="edges"),
        pytest.param("x" * 70, "x" * 63, id="long"),
    ],
)
def test_label_value(text: object, expected: str) -> None:
    assert label_value(text) == expected


@pytest.mark.parametrize(
    ("mib", "expected"),
    [
        (40960, 40),  # A100 40GB
        (81559, 80),  # H100 80GB HBM3: 79.6 GiB
        (24564, 24),  # A10: 23.99 GiB
        (15360, 15),  # T4
        (511, 0),
        (512, 1),
        (0, 0),
        (1536.0, 2),
    ],
)
def test_gib(mib: float, expected: int) -> None:
    assert gib(mib) == expected


@pytest.mark.parametrize("bad", ["40960", None, True])
def test_gib_refuses_what_is_not_a_number(bad: object) -> None:
    with pytest.raises(TypeError, match="gib expects a number of MiB"):
        gib(bad)


# -- output rules ------------------------------------------------------------------------

BUILTIN = {"nvidia.com/gpu.product": "Tesla-T4"}


@pytest.mark.parametrize(
    ("text", "namespaces", "expected"),
    [
        pytest.param("nvidia.com/a=1\n\n  nvidia.com/b = x  \n", (), {"nvidia.com/a": "1",
                     "nvidia.com/b": "x"}, id="blank-lines-and-blanks"),
        pytest.param("nvidia.com/a=\n", (), {"nvidia.com/a": ""}, id="empty-value"),
        pytest.param("example.org/a=1\n", ("example.org",), {"example.org/a": "1"},
                     id="listed-namespace"),
        pytest.param("", (), {}, id="nothing"),
    ],
)  # fmt: skip
def test_output_accepted(text: str, namespaces: tuple[str, ...], expected: dict) -> None:
    assert parse_output(text, namespaces=namespaces, builtin=BUILTIN, taken={}) == expected


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        pytest.param("nvidia.com/a=1\nnvidia.com/b\n", 2, "nvidia.com/b: not a key=value line",
                     id="no-equals"),
        pytest.param("gpu.fast=1", 1,
                     "gpu.fast=1: the key has no namespace: write nvidia.com/gpu.fast",
                     id="no-namespace"),
        pytest.param("nvidia.com/a b=1", 1, "nvidia.com/a b=1: not a valid label key",
                     id="space-in-key"),
        pytest.param("NVIDIA.com/a=1", 1, "NVIDIA.com/a=1: not a valid label key",
                     id="upper-case-namespace"),
        pytest.param(f"nvidia.com/{'k' * 64}=1", 1,
                     f"nvidia.com/{'k' * 64}=1: not a valid label key", id="long-name"),
        pytest.param("example.org/a=1", 1,
                     "example.org/a=1: namespace example.org is neither nvidia.com nor listed"
                     " in --label-template-namespaces", id="other-namespace"),
        pytest.param("nvidia.com/a=a b", 1,
                     "nvidia.com/a=a b: not a valid label value (at most 63 characters:"
                     " letters, digits, '-', '_' and '.', starting and ending with a letter"
                     " or digit; the label_value filter makes one)", id="bad-value"),
        pytest.param(f"nvidia.com/a={'v' * 64}", 1, None, id="long-value"),
        pytest.param("nvidia.com/a=@x.y", 1, None, id="nfd-lookup-value"),
        pytest.param("nvidia.com/gpu.product=T4", 1,
                     "nvidia.com/gpu.product=T4: a built-in label has this key (templates"
                     " add labels, never override)", id="builtin-key"),
        pytest.param("nvidia.com/x=1", 1, "nvidia.com/x=1: other.j2 already wrote this key",
                     id="another-template"),
        pytest.param("nvidia.com/a=1\nnvidia.com/a=2", 2,
                     "nvidia.com/a=2: this template writes the key twice", id="twice"),
    ],
)  # fmt: skip
def test_output_refused(text: str, line: int, message: str | None) -> None:
    with pytest.raises(RuleError) as caught:
        parse_output(text, namespaces=(), builtin=BUILTIN, taken={"nvidia.com/x": "other.j2"})
    assert caught.value.line == line
    if message is not None:
        assert str(caught.value) == message
    else:
        assert "not a valid label value" in str(caught.value)


# -- rendering, errors with file and line -----------------------------------------------


def test_templates_add_labels_in_file_order(tmp_path: Path) -> None:
    labels = _render(
        tmp_path,
        {
            "b.j2": "nvidia.com/b={{ gpus | length }}\n",
            "a.j2": "{% for g in gpus[:2] %}\nnvidia.com/a.{{ g.index }}={{ g.product }}\n"
            "{% endfor %}\n",
            "notes.txt": "nvidia.com/ignored=1\n",  # not *.j2: not rendered
            ".hidden.j2": "nvidia.com/hidden=1\n",
        },
    )
    assert labels == {
        "nvidia.com/a.0": "NVIDIA-A100-SXM4-40GB",
        "nvidia.com/a.1": "NVIDIA-A100-SXM4-40GB",
        "nvidia.com/b": "8",
    }


def _failure(tmp_path: Path, text: str, caplog: pytest.LogCaptureFixture, **kw: object) -> str:
    """The one error logged for a template `bad.j2` whose labels were left out."""
    caplog.set_level(logging.ERROR, logger="gfd.templating")
    labels = _render(tmp_path, {"bad.j2": text, "good.j2": "nvidia.com/good=yes\n"}, **kw)
    assert labels == {"nvidia.com/good": "yes"}, "the other template's labels are kept"
    (record,) = [r for r in caplog.records if r.name == "gfd.templating"]
    message = record.getMessage()
    assert message.endswith("; its labels are left out of this pass")
    return message.removesuffix("; its labels are left out of this pass")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("nvidia.com/ok=1\n\nnvidia.com/x={{ nope }}\n",
                     ":3: UndefinedError: 'nope' is undefined", id="undefined"),
        pytest.param("\nnvidia.com/x={{ gpus[0].speed }}\n",
                     ":2: UndefinedError: 'dict object' has no attribute 'speed'",
                     id="undefined-attribute"),
        pytest.param("nvidia.com/ok=1\n\nnvidia.com/gpu.product=x\n",
                     ":3: nvidia.com/gpu.product=x: a built-in label has this key (templates"
                     " add labels, never override)", id="builtin-key-line"),
        pytest.param("nvidia.com/a=1\n{% for g in gpus %}\n{{ 'nvidia.com/' ~ 'dup' }}=1\n"
                     "{% endfor %}\n",
                     ": output line 3: nvidia.com/dup=1: this template writes the key twice",
                     id="computed-key-no-line"),
        pytest.param("{% for g in gpus %}\nnvidia.com/n.{{ g.index % 2 }}=1\n{% endfor %}\n",
                     ":2: nvidia.com/n.0=1: this template writes the key twice",
                     id="computed-key-by-prefix"),
        pytest.param("nvidia.com/x={{ 1 / 0 }}\n",
                     ":1: ZeroDivisionError: division by zero", id="python-error"),
        pytest.param("{% macro f() %}{{ f() }}{% endmacro %}\nnvidia.com/x={{ f() }}\n",
                     ":1: recursion too deep", id="recursion"),
        pytest.param("\n\nnvidia.com/x={{ gpus.__class__ }}\n",
                     ":3: SecurityError: access to attribute '__class__' of 'list' object is"
                     " unsafe.", id="internal-attribute"),
        pytest.param("nvidia.com/x={{ gpus.append(1) }}\n",
                     ":1: SecurityError: access to attribute 'append' of 'list' object is"
                     " unsafe.", id="mutation"),
        pytest.param("{% include '../secret' %}\n",
                     ":1: TemplateNotFound: '../secret' is not a file name in the directory",
                     id="include-outside"),
        pytest.param("{% include '/etc/passwd' %}\n",
                     ":1: TemplateNotFound: '/etc/passwd' is not a file name in the directory",
                     id="include-absolute"),
        pytest.param("nvidia.com/x={{ 'x' * 1000000000 }}\n",
                     ":1: SecurityError: repetition makes more than 100000 items",
                     id="repeat"),
        pytest.param("nvidia.com/x={{ [0] * 200000 }}\n",
                     ":1: SecurityError: repetition makes more than 100000 items",
                     id="repeat-list"),
        pytest.param("nvidia.com/x={{ 7 ** 100000 }}\n",
                     ":1: SecurityError: power makes a number over 4096 bits", id="power"),
        pytest.param("nvidia.com/x={{ range(1000000) | length }}\n",
                     ":1: SecurityError: range of 1000000 items is over 100000", id="range"),
        pytest.param("nvidia.com/x={{ '%1000000000d' % 1 }}\n",
                     ":1: SecurityError: format width over 5 digits", id="printf-width"),
        pytest.param("nvidia.com/x={{ '{:>1000000000}'.format(1) }}\n",
                     ":1: SecurityError: format width over 5 digits", id="format-width"),
        pytest.param("nvidia.com/x={{ 'x'.ljust(1000000000) }}\n",
                     ":1: SecurityError: width 1000000000 is over 100000", id="ljust"),
        pytest.param("nvidia.com/x={{ [1] | batch(1000000000, 0) | list | length }}\n",
                     ":1: SecurityError: size 1000000000 is over 100000", id="batch-padding"),
        pytest.param("nvidia.com/x={{ [1] | slice(1000000000) | list | length }}\n",
                     ":1: SecurityError: size 1000000000 is over 100000", id="slice-count"),
        pytest.param("nvidia.com/x={{ [1, 2, 3] | batch(2, 0) | list | length }}\n"
                     "nvidia.com/y={{ 1 / 0 }}\n",
                     ":2: ZeroDivisionError: division by zero", id="batch-still-works"),
        pytest.param("nvidia.com/x={{ lipsum() }}\n",
                     ":1: UndefinedError: 'lipsum' is undefined", id="no-lipsum"),
        pytest.param("{% for i in range(70000) %}nvidia.com/k{{ i }}=1\n{% endfor %}",
                     ": renders 1388890 characters, over 65536", id="too-much-output"),
    ],
)  # fmt: skip
def test_failures_name_file_and_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str, expected: str
) -> None:
    path = tmp_path / "templates" / "bad.j2"
    assert _failure(tmp_path, text, caplog) == f"label template {path}{expected}"


def test_error_in_an_included_file_names_the_including_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "helpers.inc").write_text(
        "{% macro mem(g) %}{{ g.memory }}{% endmacro %}\n"
    )
    text = "{% import 'helpers.inc' as h %}\n\nnvidia.com/x={{ h.mem(gpus[0]) }}\n"
    path = tmp_path / "templates" / "bad.j2"
    assert _failure(tmp_path, text, caplog) == (
        f"label template {path}:3: UndefinedError: 'dict object' has no attribute 'memory'"
    )


def test_include_and_import_from_the_directory(tmp_path: Path) -> None:
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "lines.inc").write_text("nvidia.com/inc=yes\n")
    (tmp_path / "templates" / "macros.inc").write_text(
        "{% macro count(gs) %}{{ gs | length }}{% endmacro %}"
    )
    labels = _render(
        tmp_path,
        {"a.j2": "{% include 'lines.inc' %}\n{% from 'macros.inc' import count %}\n"
         "nvidia.com/n={{ count(gpus) }}\n"},
    )  # fmt: skip
    assert labels == {"nvidia.com/inc": "yes", "nvidia.com/n": "8"}


def test_duplicate_key_between_templates(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="gfd.templating")
    labels = _render(
        tmp_path, {"a.j2": "nvidia.com/x=1\n", "b.j2": "nvidia.com/y=2\n\nnvidia.com/x=3\n"}
    )
    assert labels == {"nvidia.com/x": "1"}  # b.j2 is left out, whole
    a, b = (tmp_path / "templates" / name for name in ("a.j2", "b.j2"))
    assert [r.getMessage() for r in caplog.records] == [
        f"label template {b}:3: nvidia.com/x=3: {a} already wrote this key;"
        " its labels are left out of this pass"
    ]


def test_listed_namespace(tmp_path: Path) -> None:
    files = {"a.j2": "example.org/gpu={{ gpus | length }}\n"}
    assert _render(tmp_path, files, namespaces=("example.org",)) == {"example.org/gpu": "8"}


# -- the time budget ---------------------------------------------------------------------

# Each would run for hours: 10^15 empty iterations, 2^60 macro calls, 10^10 items of a
# nested generator expression through filters.
FOREVER = {
    "nested-empty-loops": "{% for i in range(100000) %}{% for j in range(100000) %}"
    "{% for k in range(100000) %}{% endfor %}{% endfor %}{% endfor %}\n",
    "exponential-macro": "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}"
    "{% endmacro %}\nnvidia.com/x={{ f(60) }}\n",
    "loop-over-a-filter": "{% for i in range(100000) %}"
    "{{ range(100000) | map('string') | join }}{% endfor %}\n",
    "recursive-loop": "{% for n in [1] recursive %}{{ loop([1, 1]) }}{% endfor %}\n",
}


@pytest.mark.parametrize("text", FOREVER.values(), ids=FOREVER.keys())
def test_a_template_past_its_budget_is_stopped_and_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, text: str
) -> None:
    start = time.monotonic()
    message = _failure(tmp_path, text, caplog, budget=0.05)
    elapsed = time.monotonic() - start
    path = tmp_path / "templates" / "bad.j2"
    if "recursive" in text:
        # Python's recursion limit may come first; either way it stops, reported.
        assert message.startswith(f"label template {path}:1: ")
    else:
        assert message.startswith(f"label template {path}:")
        assert message.endswith(": ran past its render time budget")
    # measured 0.03-0.14 s (3 runs of the 4 templates)
    assert elapsed < 10, f"took {elapsed:.1f}s for a 0.05s budget"


def test_budget_is_per_render(tmp_path: Path) -> None:
    """A budget spent by one render does not carry over to the next template or pass."""
    templates = _templates(tmp_path, {"a.j2": "nvidia.com/a=1\n", "b.j2": "nvidia.com/b=2\n"})
    m, cfg = dgx_a100(), config()
    templates.budget = 0.5
    templates.labels(m, cfg, {})
    time.sleep(0.6)  # the clock is armed only while a template renders
    assert templates.labels(m, cfg, {}) == {"nvidia.com/a": "1", "nvidia.com/b": "2"}


# -- loading -----------------------------------------------------------------------------


def test_syntax_error_at_load_names_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(TemplateLoadError) as caught:
        _templates(tmp_path, {"ok.j2": "nvidia.com/a=1\n", "bad.j2": "nvidia.com/a=1\n{% for %}\n"})
    path = tmp_path / "templates" / "bad.j2"
    assert str(caught.value) == (
        f"label template {path}:2: Expected an expression, got 'end of statement block'"
    )
    assert caught.value.path == "--label-templates"


@pytest.mark.parametrize(
    "name", ["nosuch", "center", "format", "indent", "wordwrap", "tojson", "random"]
)
def test_unknown_or_removed_filter_at_load(tmp_path: Path, name: str) -> None:
    with pytest.raises(TemplateLoadError) as caught:
        _templates(tmp_path, {"bad.j2": f"\nnvidia.com/a={{{{ 'x' | {name} }}}}\n"})
    assert str(caught.value) == (
        f"label template {tmp_path / 'templates' / 'bad.j2'}:2: No filter named '{name}'."
    )


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(TemplateLoadError) as caught:
        load_templates(str(tmp_path / "nowhere"))
    assert str(caught.value) == f"--label-templates: not a directory (got '{tmp_path}/nowhere')"


def test_empty_directory_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="gfd.templating")
    templates = _templates(tmp_path, {"README": "nothing here\n"})
    assert templates.templates == []
    assert [r.getMessage() for r in caplog.records] == [
        f"No label templates (*.j2) in {tmp_path / 'templates'}"
    ]


def test_configmap_volume_layout(tmp_path: Path) -> None:
    """A ConfigMap volume: `x.j2 -> ..data/x.j2`, `..data -> ..<timestamp>/`."""
    directory = tmp_path / "templates"
    stamped = directory / "..2026_01_01_00_00_00.000000001"
    stamped.mkdir(parents=True)
    (stamped / "gpus.j2").write_text("nvidia.com/n={{ gpus | length }}\n")
    (directory / "..data").symlink_to(stamped.name)
    (directory / "gpus.j2").symlink_to("..data/gpus.j2")
    templates = LabelTemplates(directory)
    assert templates.names == ["gpus.j2"]
    assert templates.labels(dgx_a100(), config(), {}) == {"nvidia.com/n": "8"}


def test_symlink_out_of_the_directory_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "outside.inc").write_text("nvidia.com/leak=1\n")
    (tmp_path / "templates").mkdir()
    os.symlink(tmp_path / "outside.inc", tmp_path / "templates" / "link.inc")
    path = tmp_path / "templates" / "bad.j2"
    assert _failure(tmp_path, "{% include 'link.inc' %}\n", caplog) == (
        f"label template {path}:1: TemplateNotFound:"
        f" {tmp_path / 'templates' / 'link.inc'} is not a file in {tmp_path / 'templates'}"
    )


def test_builtin_names_the_shipped_directory() -> None:
    assert resolve_directory("builtin") == BUILTIN_DIRECTORY
    assert resolve_directory("/etc/gfd") == Path("/etc/gfd")
    assert sorted(p.name for p in BUILTIN_DIRECTORY.glob("*.j2")) == [
        "memory-gib.j2",
        "nvlink.j2",
        "per-model.j2",
    ]


@pytest.mark.parametrize(
    ("files", "wanted"),
    [
        pytest.param({"a.j2": "nvidia.com/a=1\n"}, False, id="no"),
        pytest.param({"a.j2": "nvidia.com/a={{ nvlinks | length }}\n"}, True, id="top-level"),
        pytest.param({"a.j2": "nvidia.com/a={{ gpus[0].nvlinks }}\n"}, True, id="per-gpu"),
        pytest.param({"a.j2": "{% include 'x.inc' %}", "x.inc": "{{ nvlinks }}"}, True,
                     id="included"),
    ],
)  # fmt: skip
def test_nvlinks_read_only_when_named(tmp_path: Path, files: dict, wanted: bool) -> None:
    calls = []

    def reader(gpus: object) -> tuple[NvLink, ...]:
        calls.append(gpus)
        return (NvLink(0, 0, "0000:c4:00.0", None),)

    templates = _templates(tmp_path, files)
    assert templates.wants_nvlinks is wanted
    templates.labels(dgx_a100(), config(), {}, read_nvlinks=reader)
    assert len(calls) == (1 if wanted else 0)


def test_nvlink_read_failure_costs_no_labels(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(gpus: object) -> tuple[NvLink, ...]:
        raise RuntimeError("NVML went away")

    templates = _templates(tmp_path, {"a.j2": "nvidia.com/links={{ nvlinks | length }}\n"})
    assert templates.labels(dgx_a100(), config(), {}, read_nvlinks=broken) == {
        "nvidia.com/links": "0"
    }
    assert "Label templates see no NVLinks this pass: NVML went away" in caplog.text


def test_compiled_once_per_load(tmp_path: Path) -> None:
    """An edited file changes nothing until the next load (SIGHUP)."""
    templates = _templates(tmp_path, {"a.j2": "nvidia.com/a=1\n"})
    (tmp_path / "templates" / "a.j2").write_text("nvidia.com/a=2\n")
    assert templates.labels(dgx_a100(), config(), {}) == {"nvidia.com/a": "1"}
    assert LabelTemplates(tmp_path / "templates").labels(dgx_a100(), config(), {}) == {
        "nvidia.com/a": "2"
    }
