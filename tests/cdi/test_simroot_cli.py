"""`nvidia-cdi generate --simulator-root DIR`: the command over a laid-out simulated root.

Matrix: the flag's usage errors (no `--nvml-mock`, a relative path, `/`, another root
flag or its variable beside it) and its variable; the command on dgx-a100: every node
the spec names is a character device under DIR with the spec's numbers, every mount
exists under DIR, a second run changes neither the spec nor DIR; `--mode imex` on gb200
over the same DIR; mknod really refused (CAP_MKNOD dropped from the bounding set with
setpriv): exit 1 naming the node, no spec; `--watch` puts back a removed node without
touching the rest.

Needs root (mknod); CI runs as root.
"""

from __future__ import annotations

import logging
import os
import shutil
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from cdi_fixtures import run_cdi

from cdi import run
from cdi.cli import GenerateSettings, UsageError, parse
from nvlib import mock

DISABLE_HOOKS = ("--disable-hook", "all")  # as the chart runs it: no hook binary on the node


@pytest.fixture
def as_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root: mknod makes character devices (CI runs as root)", pytrace=False)


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        pytest.param(["--simulator-root", "/srv/sim"], {},
                     "--simulator-root /srv/sim: needs --nvml-mock", id="without-nvml-mock"),
        pytest.param(["--nvml-mock", "t4", "--simulator-root", "srv/sim"], {},
                     "--simulator-root srv/sim: must be an absolute path", id="relative"),
        pytest.param(["--nvml-mock", "t4", "--simulator-root", "//"], {},
                     "--simulator-root //: must be a directory of its own, not /", id="slash"),
        pytest.param(["--nvml-mock", "t4", "--simulator-root", "/srv/sim", "--driver-root", "/"],
                     {}, "cannot be combined with --driver-root (/)", id="driver-root"),
        pytest.param(["--nvml-mock", "t4", "--simulator-root", "/srv/sim"],
                     {"DRIVER_ROOT_CTR_PATH": "/driver-root"},
                     "cannot be combined with --driver-root-ctr-path (/driver-root)",
                     id="ctr-path-variable"),
        pytest.param([], {"NVIDIA_CTK_CDI_GENERATE_SIMULATOR_ROOT": "/srv/sim"},
                     "--simulator-root /srv/sim: needs --nvml-mock", id="variable-alone"),
    ],
)  # fmt: skip
def test_usage_errors(args: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(UsageError) as err:
        parse(["generate", *args], env)
    assert message in str(err.value)


def test_usage_error_exits_2() -> None:
    result = run_cdi("generate", "--simulator-root", "/srv/sim", "--output", "-")
    assert result.returncode == 2
    assert "--simulator-root /srv/sim: needs --nvml-mock" in result.stderr
    assert result.stdout == ""


def test_flag_and_variable() -> None:
    settings = parse(
        ["generate", "--nvml-mock", "t4"], {"NVIDIA_CTK_CDI_GENERATE_SIMULATOR_ROOT": "/srv/sim/"}
    )
    assert isinstance(settings, GenerateSettings) and settings.simulator_root == "/srv/sim"
    settings = parse(["generate", "--nvml-mock", "t4", "--simulator-root", "/a"],
                     {"NVIDIA_CTK_CDI_GENERATE_SIMULATOR_ROOT": "/b"})  # fmt: skip
    assert isinstance(settings, GenerateSettings) and settings.simulator_root == "/a"
    assert parse(["generate"], {}).simulator_root is None  # type: ignore[union-attr]


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for directory, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            st = os.lstat(os.path.join(directory, name))
            found[os.path.relpath(os.path.join(directory, name), root)] = (
                st.st_ino,
                st.st_mtime_ns,
            )
    return found


def generate(root: Path, output: Path, *args: str, profile: str = "dgx-a100") -> str:
    result = run_cdi(
        "generate", "--nvml-mock", profile, "--simulator-root", str(root),
        "--output", str(output), *DISABLE_HOOKS, *args,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stderr


def test_the_spec_names_real_nodes_under_the_root(tmp_path: Path, as_root: None) -> None:
    root, out = tmp_path / "sim", tmp_path / "cdi" / "nvidia.yaml"
    log = generate(root, out)
    assert f"Simulated driver root {root} laid out: " in log
    spec = yaml.safe_load(out.read_text())
    edits = [spec["containerEdits"], *(d["containerEdits"] for d in spec["devices"])]
    nodes = [n for e in edits for n in e.get("deviceNodes", [])]
    assert {n["path"] for n in nodes} >= {f"/dev/nvidia{i}" for i in range(8)} | {"/dev/nvidiactl"}
    for node in nodes:
        assert node["hostPath"] == f"{root}{node['path']}"
        st = os.stat(node["hostPath"])
        assert stat.S_ISCHR(st.st_mode), node
        assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (node["major"], node.get("minor", 0))
    mounts = [m for e in edits for m in e.get("mounts", [])]
    assert mounts and all(m["hostPath"].startswith(f"{root}/") for m in mounts)
    assert all(os.path.exists(m["hostPath"]) for m in mounts)
    assert "hooks" not in spec["containerEdits"]

    text, before = out.read_bytes(), snapshot(root)
    spec_inode = out.stat().st_ino
    log = generate(root, out)
    assert "laid out" not in log and "CDI spec unchanged" in log
    assert out.read_bytes() == text and out.stat().st_ino == spec_inode
    assert snapshot(root) == before


def test_imex_mode_over_the_same_root(tmp_path: Path, as_root: None) -> None:
    root = tmp_path / "sim"
    generate(root, tmp_path / "cdi" / "nvidia.yaml", profile="gb200")
    generate(root, tmp_path / "cdi" / "nvidia-imex.yaml", "--mode", "imex", profile="gb200")
    spec = yaml.safe_load((tmp_path / "cdi" / "nvidia-imex.yaml").read_text())
    (node,) = spec["devices"][0]["containerEdits"]["deviceNodes"]
    channel = f"{root}/dev/nvidia-caps-imex-channels/channel0"
    assert (node["path"], node["hostPath"]) == ("/dev/nvidia-caps-imex-channels/channel0", channel)
    assert stat.S_ISCHR(os.stat(channel).st_mode)


def test_without_cap_mknod_nothing_is_written(tmp_path: Path, as_root: None) -> None:
    """The real refusal: CAP_MKNOD dropped from the bounding set, so root's mknod fails."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.fail("setpriv is missing: apt-get install -y util-linux", pytrace=False)
    root, out = tmp_path / "sim", tmp_path / "cdi" / "nvidia.yaml"
    result = subprocess.run(
        [setpriv, "--bounding-set", "-mknod", "--", sys.executable, "-m", "cdi", "generate",
         "--nvml-mock", "dgx-a100", "--simulator-root", str(root), "--output", str(out),
         *DISABLE_HOOKS],
        capture_output=True, text=True, timeout=60, check=False,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert (
        f"failed to generate CDI spec: cannot create character device {root}/dev/nvidia-caps/"
        "nvidia-cap1 (509:1): Operation not permitted: making device nodes needs CAP_MKNOD"
    ) in result.stderr
    assert not out.exists()


def until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def watching(tmp_path: Path, as_root: None) -> Iterator[tuple[Path, Path, list[int]]]:
    """`generate --watch --simulator-root` in a thread, checking every 50 ms."""
    root, out = tmp_path / "sim", tmp_path / "cdi" / "nvidia.yaml"
    settings = GenerateSettings(
        output=str(out), nvml_mock="dgx-a100", simulator_root=str(root),
        disabled_hooks=("all",), interval_ns=50_000_000,
    )  # fmt: skip
    checks = [0]

    def discover(host: run.Host) -> object:
        checks[0] += 1
        return run.discover_machine(host)

    control = run.WatchControl()
    result: list[int] = []
    thread = threading.Thread(
        target=lambda: result.append(run.watch(settings, discover, control))  # type: ignore[arg-type]
    )
    thread.start()
    try:
        yield root, out, checks
    finally:
        control.stop()
        thread.join(10)
        mock.release()
    assert result == [0]


def test_watch_puts_back_a_removed_node_and_touches_nothing_else(
    watching: tuple[Path, Path, list[int]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cdi")
    root, out, checks = watching
    until(out.exists)
    spec_inode = out.stat().st_ino
    (root / "dev/nvidia2").unlink()
    before = {p: v for p, v in snapshot(root).items() if p.startswith("dev/nvidia")}
    until(lambda: (root / "dev/nvidia2").exists())
    assert os.stat(root / "dev/nvidia2").st_rdev == os.makedev(195, 2)
    seen = checks[0]
    until(lambda: checks[0] >= seen + 3)  # passes after the repair
    after = {p: v for p, v in snapshot(root).items() if p.startswith("dev/nvidia")}
    assert {p: after[p] for p in before} == before  # the other nodes: same inode and mtime
    assert out.stat().st_ino == spec_inode  # same bytes: the spec was not rewritten
    laid = [r.getMessage() for r in caplog.records if "laid out" in r.getMessage()]
    assert laid[-1].endswith(": 1 created, 0 replaced, 0 removed")
