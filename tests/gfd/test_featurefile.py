"""gfd.outputs.featurefile: format, file and stdout writes, the removal rule.

Matrix: label sets (empty, byte-order sorting, empty value); destination
(file, `-`, `""`, /dev/null, refused targets); removal_applies over its four
inputs; cleanup over (removal applies?) x (regular, absent, /dev/null, FIFO,
symlink, stdout) plus a failing removal; and the import weight of file mode.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

import gfd.outputs
from gfd.outputs import OutputError
from gfd.outputs.featurefile import FeatureFile, format_labels, removal_applies

REPO_ROOT = Path(gfd.outputs.__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        pytest.param({}, b"", id="empty"),
        pytest.param({"nvidia.com/gpu.count": "8"}, b"nvidia.com/gpu.count=8\n", id="one"),
        pytest.param(
            {"nvidia.com/mig.capable": "", "nvidia.com/gpu.present": "true"},
            b"nvidia.com/gpu.present=true\nnvidia.com/mig.capable=\n",
            id="empty-value",
        ),
        pytest.param(
            # byte order: '-' < '.' < digits < upper case < '_' < lower case
            {"a.b/x_y": "1", "a.b/x.y": "2", "a.b/xY": "3", "a.b/x-y": "4", "a.b/x1": "5"},
            b"a.b/x-y=4\na.b/x.y=2\na.b/x1=5\na.b/xY=3\na.b/x_y=1\n",
            id="byte-order",
        ),
    ],
)
def test_format_labels(labels: dict[str, str], expected: bytes) -> None:
    assert format_labels(labels) == expected


def test_write_file(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="gfd.outputs")
    path = tmp_path / "gfd"
    FeatureFile(str(path)).write({"b": "2", "a": "1"})
    assert path.read_bytes() == b"a=1\nb=2\n"
    assert os.stat(path).st_mode & 0o777 == 0o644
    assert [r.getMessage() for r in caplog.records] == [f"Writing labels to output file {path}"]


@pytest.mark.parametrize("name", ["-", ""], ids=["dash", "empty"])
def test_write_stdout(
    name: str, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="gfd.outputs")
    output = FeatureFile(name)
    output.write({"b": "", "a": "1"})
    output.write({"a": "2"})
    assert capfd.readouterr().out == "a=1\nb=\na=2\n"
    assert caplog.records == []
    assert not os.path.exists(name or "-")


def test_write_dev_null_in_place() -> None:
    FeatureFile("/dev/null").write({"a": "1"})
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


def make_dir(path: Path) -> None:
    path.mkdir()


def make_symlink(path: Path) -> None:
    path.symlink_to(path.parent / "elsewhere")


def no_parent(path: Path) -> None:
    pass


@pytest.mark.parametrize(
    ("make", "target", "reason"),
    [
        pytest.param(make_dir, "gfd", "directory", id="directory"),
        pytest.param(make_symlink, "gfd", "symbolic link", id="symlink"),
        pytest.param(no_parent, "missing/gfd", "No such file or directory", id="missing-parent"),
    ],
)
def test_write_errors(tmp_path: Path, make: object, target: str, reason: str) -> None:
    path = tmp_path / target
    assert callable(make)
    make(path)
    with pytest.raises(OutputError) as caught:
        FeatureFile(str(path)).write({"a": "1"})
    message = str(caught.value)
    assert message.startswith(f"error atomically writing file '{path}': ")
    assert reason in message
    assert isinstance(caught.value.__cause__, OSError)


@pytest.mark.parametrize(
    ("node_feature_api", "oneshot", "infinite", "output_file", "applies"),
    [
        pytest.param(False, False, False, "/etc/nfd/gfd", True, id="file-periodic"),
        pytest.param(True, False, False, "/etc/nfd/gfd", False, id="nodefeature-mode"),
        pytest.param(False, True, False, "/etc/nfd/gfd", False, id="oneshot"),
        pytest.param(False, False, True, "/etc/nfd/gfd", False, id="infinite-sleep"),
        pytest.param(False, False, False, "", False, id="stdout-empty"),
        pytest.param(False, False, False, "-", False, id="stdout-dash"),
    ],
)
def test_removal_applies(
    node_feature_api: bool, oneshot: bool, infinite: bool, output_file: str, applies: bool
) -> None:
    assert (
        removal_applies(
            use_node_feature_api=node_feature_api,
            oneshot=oneshot,
            sleep_infinite=infinite,
            output_file=output_file,
        )
        is applies
    )


def make_file(path: Path) -> None:
    path.write_bytes(b"a=1\n")


def make_fifo(path: Path) -> None:
    os.mkfifo(path)


def make_absent(path: Path) -> None:
    pass


@pytest.mark.parametrize(
    ("make", "remove", "gone"),
    [
        pytest.param(make_file, True, True, id="regular-removed"),
        pytest.param(make_file, False, False, id="regular-kept-when-rule-says-no"),
        pytest.param(make_absent, True, True, id="absent-no-warning"),
        pytest.param(make_fifo, True, False, id="fifo-never-removed"),
        pytest.param(make_symlink, True, False, id="symlink-never-removed"),
    ],
)
def test_cleanup(
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    make: object,
    remove: bool,
    gone: bool,
) -> None:
    caplog.set_level(logging.INFO, logger="gfd.outputs")
    path = tmp_path / "gfd"
    assert callable(make)
    make(path)
    legacy = tmp_path / "gfd-tmp"
    (legacy / "sub").mkdir(parents=True)
    (legacy / "sub" / "old").write_bytes(b"x")
    FeatureFile(str(path), remove_on_cleanup=remove).cleanup()
    assert os.path.lexists(path) is not gone
    # The legacy temp dir goes with the file, and stays whenever the file does.
    assert legacy.exists() is not (gone and remove)
    assert caplog.records == []


def test_cleanup_never_touches_dev_null_or_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    FeatureFile("/dev/null", remove_on_cleanup=True).cleanup()
    FeatureFile("-", remove_on_cleanup=True).cleanup()
    assert os.path.exists("/dev/null")
    assert capfd.readouterr().out == ""


def test_cleanup_failure_is_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "gfd"
    path.write_bytes(b"a=1\n")

    def refuse(target: object) -> bool:
        raise PermissionError(13, "Permission denied", str(target))

    monkeypatch.setattr("gfd.outputs.featurefile.remove_regular_file", refuse)
    FeatureFile(str(path), remove_on_cleanup=True).cleanup()
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"Error removing output file: [Errno 13] Permission denied: '{path}'")
    ]


def test_file_mode_imports_no_kubernetes_or_yaml(tmp_path: Path) -> None:
    """`--oneshot` in file mode must not pay for the Kubernetes client (~0.5 s, ~40 MiB)."""
    code = (
        "import sys\n"
        "import gfd.outputs, gfd.outputs.featurefile\n"
        "from gfd.outputs.featurefile import FeatureFile\n"
        f"FeatureFile({str(tmp_path / 'gfd')!r}).write({{'a': '1'}})\n"
        "FeatureFile('-')\n"
        "heavy = sorted(m for m in ('kubernetes', 'yaml', 'urllib3') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "gfd").read_bytes() == b"a=1\n"


# -- --label-expiry: NFD's expiry directive ---------------------------------------------


@pytest.mark.parametrize(
    ("expires_at", "line"),
    [
        pytest.param(0.0, "# +expiry-time=1970-01-01T00:00:00Z", id="epoch"),
        pytest.param(1_764_306_180.0, "# +expiry-time=2025-11-28T05:03:00Z", id="whole"),
        pytest.param(1_764_306_180.2, "# +expiry-time=2025-11-28T05:03:01Z", id="rounded-up"),
    ],
)
def test_expiry_directive_is_nfd_rfc3339_utc(expires_at: float, line: str) -> None:
    assert format_labels({"nvidia.com/a": "1"}, expires_at) == f"{line}\nnvidia.com/a=1\n".encode()


def test_no_expiry_by_default() -> None:
    assert format_labels({"nvidia.com/a": "1"}) == b"nvidia.com/a=1\n"


def test_expiry_moves_with_the_clock_and_rewrites_the_file(tmp_path: Path) -> None:
    """With an expiry every pass rewrites the file: its directive must move forward."""
    now = [1_764_306_000.0]
    path = tmp_path / "gfd"
    out = FeatureFile(str(path), expiry_seconds=180.0, clock=lambda: now[0])
    out.write({"nvidia.com/a": "1"})
    first = path.stat()
    assert path.read_text() == "# +expiry-time=2025-11-28T05:03:00Z\nnvidia.com/a=1\n"
    now[0] += 60
    out.write({"nvidia.com/a": "1"})  # the same labels
    assert path.read_text() == "# +expiry-time=2025-11-28T05:04:00Z\nnvidia.com/a=1\n"
    assert path.stat().st_ino != first.st_ino, "replaced, not left alone"


def test_expiry_on_stdout(capfd: pytest.CaptureFixture[str]) -> None:
    FeatureFile("-", expiry_seconds=120.0, clock=lambda: 0.0).write({"nvidia.com/a": "1"})
    assert capfd.readouterr().out == "# +expiry-time=1970-01-01T00:02:00Z\nnvidia.com/a=1\n"
