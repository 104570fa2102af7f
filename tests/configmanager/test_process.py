"""Finding the daemon to signal (configmanager/process.py): names against command lines,
a /proc of our own making, and a real child process found and signalled."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from configmanager.process import ProcessNotFound, command_matches, find_process, send_signal

VENV_PY = "/opt/gpu-node-toolkit/bin/python"
PLUGIN = "/opt/gpu-node-toolkit/bin/nvidia-device-plugin"


@pytest.mark.parametrize(
    ("name", "argv", "matches"),
    [
        # upstream's case: a binary started by its name
        pytest.param("nvidia-device-plugin", ["nvidia-device-plugin"], True, id="argv0"),
        pytest.param("nvidia-device-plugin", ["nvidia-device-plugin", "--x"], True,
                     id="argv0-with-args"),
        pytest.param("nvidia-device-plugin", ["/usr/bin/nvidia-device-plugin"], True,
                     id="argv0-path-by-base-name"),
        pytest.param("/usr/bin/mps-control-daemon", ["/usr/bin/mps-control-daemon"], True,
                     id="path-exact"),
        pytest.param("/usr/bin/mps-control-daemon", ["mps-control-daemon"], False,
                     id="path-needs-the-path"),
        pytest.param("/usr/bin/mps-control-daemon", ["/sbin/mps-control-daemon"], False,
                     id="path-other-directory"),
        # our console scripts: the kernel runs the #! interpreter with the script's path
        pytest.param("nvidia-device-plugin", [VENV_PY, PLUGIN, "--kubelet-socket=x"], True,
                     id="console-script"),
        pytest.param("gpu-feature-discovery", ["python3.11", "/x/gpu-feature-discovery"], True,
                     id="console-script-versioned-python"),
        pytest.param(PLUGIN, [VENV_PY, PLUGIN], True, id="console-script-by-path"),
        pytest.param("nvidia-device-plugin", [VENV_PY, "-m", "deviceplugin"], False,
                     id="python-dash-m-is-not-the-script"),
        pytest.param("nvidia-device-plugin", ["bash", PLUGIN], False,
                     id="only-python-runs-a-script-here"),
        pytest.param("nvidia-device-plugin", [VENV_PY, "/x/config-manager"], False,
                     id="another-script"),
        pytest.param("python", [VENV_PY, PLUGIN], True, id="the-interpreter-itself"),
        pytest.param("nvidia-device", ["nvidia-device-plugin"], False, id="no-prefix-match"),
        pytest.param("", ["nvidia-device-plugin"], False, id="empty-name"),
        pytest.param("nvidia-device-plugin", [], False, id="no-argv"),
    ],
)  # fmt: skip
def test_command_matches(name: str, argv: list[str], matches: bool) -> None:
    assert command_matches(name, argv) is matches


def fake_proc(tmp_path: Path, processes: dict[int, bytes | None]) -> str:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)  # not a PID: skipped
    (proc / "meminfo").write_text("")
    for pid, cmdline in processes.items():
        (proc / str(pid)).mkdir()
        if cmdline is not None:  # None: gone before its cmdline was read
            (proc / str(pid) / "cmdline").write_bytes(cmdline)
    return str(proc)


def test_lowest_matching_pid_and_not_itself(tmp_path: Path) -> None:
    proc = fake_proc(tmp_path, {
        1: b"/pause\0",
        7: b"",  # a kernel thread or a zombie
        9: None,
        12: f"{VENV_PY}\0/opt/gpu-node-toolkit/bin/config-manager\0".encode(),
        30: f"{VENV_PY}\0{PLUGIN}\0--kubelet-socket=/k\0".encode(),
        100: f"{VENV_PY}\0{PLUGIN}\0".encode(),
    })  # fmt: skip
    assert find_process("nvidia-device-plugin", proc, own_pid=12) == 30
    assert find_process("nvidia-device-plugin", proc, own_pid=30) == 100  # never itself
    assert find_process("config-manager", proc, own_pid=1) == 12
    with pytest.raises(ProcessNotFound, match=r"^no process found$"):
        find_process("gpu-feature-discovery", proc, own_pid=12)


def test_a_child_is_found_and_signalled(tmp_path: Path) -> None:
    """A script run by Python, as a console script is: found by its path, and signalled."""
    script = tmp_path / "bin" / "a-daemon"
    script.parent.mkdir()
    script.write_text("import signal, sys\nsignal.signal(signal.SIGHUP, lambda *_: sys.exit(7))\n"
                      "print('ready', flush=True)\nsignal.pause()\n")  # fmt: skip
    command = [sys.executable, str(script)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None and child.stdout.readline() == "ready\n"
            assert find_process(str(script)) == child.pid
            assert send_signal(str(script), int(signal.SIGHUP)) == child.pid
            assert child.wait(timeout=10) == 7
        finally:
            child.kill()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # reaped: its /proc entry is gone
        try:
            find_process(str(script))
        except ProcessNotFound:
            break
    else:
        pytest.fail("the child was still found after it exited")
