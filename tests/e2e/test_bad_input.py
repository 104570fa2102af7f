"""Bad input and bad surroundings, for the three commands as processes.

Each case is a clear error naming the thing; the process keeps serving what it had where
that is safe; no file is left torn or half-written. The surroundings are real: a 64 KiB
tmpfs filled up or remounted read-only in the command's own mount namespace
(tests/support/tightfs.py, as root), a kubelet socket path that is a regular file or a
directory, a config file or an `--nvml-mock` profile turned to garbage before a SIGHUP.
The API answering non-JSON and a malformed kubeconfig are in the GFD cases, against
the fake API server (tests/gfd/kubefake.py).
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import pytest
import yaml
from tightfs import FILLER, TightFs, run_in_tmpfs

BIN = Path(sys.executable).parent
NVIDIA_CDI = BIN / "nvidia-cdi"
ENOSPC = os.strerror(errno.ENOSPC)
EROFS = os.strerror(errno.EROFS)


class Log:
    """A process's standard error, read as it comes, to wait on what it logs."""

    def __init__(self, stream: IO[str] | None) -> None:
        assert stream is not None
        self.lines: list[str] = []
        self._stream = stream
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Once the process ended: the rest of what it wrote, and the pipe closed."""
        self._thread.join(10)
        self._stream.close()

    def _read(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.append(line)

    def count(self, text: str) -> int:
        return sum(text in line for line in list(self.lines))

    def text(self) -> str:
        return "".join(list(self.lines))


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}")
        time.sleep(0.02)


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=10)


# --- nvidia-cdi generate ------------------------------------------------------------------

OLD_SPEC = b"# the spec of the last good pass\n"
CDI_ARGS = ("--nvml-mock", "t4", "--nvidia-cdi-hook-path", "/usr/bin/nvidia-cdi-hook")


@pytest.mark.parametrize(
    ("surroundings", "reason"),
    [pytest.param("full", ENOSPC, id="full"), pytest.param("read-only", EROFS, id="read-only")],
)
def test_cdi_generate_into_a_full_or_read_only_directory(
    tmp_path: Path, surroundings: str, reason: str
) -> None:
    """One pass: exit 1 naming the spec file and the errno; the old spec keeps its bytes
    and no temp file is left."""
    mount = tmp_path / "cdi"
    spec = mount / "nvidia.yaml"
    result, files = run_in_tmpfs(
        mount,
        [str(NVIDIA_CDI), "generate", *CDI_ARGS, "--output", str(spec)],
        seed={"nvidia.yaml": OLD_SPEC},
        prefill=surroundings == "full",
        read_only=surroundings == "read-only",
    )
    assert result.returncode == 1, result.stderr
    assert "failed to generate CDI spec: [Errno " in result.stderr
    assert f"{reason}: '{spec}'" in result.stderr
    assert "Traceback" not in result.stderr
    assert files == {"nvidia.yaml": OLD_SPEC} | ({FILLER: b""} if surroundings == "full" else {})


@pytest.mark.parametrize(
    ("surroundings", "reason"),
    [pytest.param("full", ENOSPC, id="full"), pytest.param("read-only", EROFS, id="read-only")],
)
def test_cdi_watch_waits_out_a_full_or_read_only_directory(
    tmp_path: Path, surroundings: str, reason: str
) -> None:
    """`--watch`: each interval logs the error naming the file and keeps the old spec
    whole, with no temp file; once the directory takes writes again, the spec is
    written at the next interval."""
    mount = tmp_path / "cdi"
    spec = mount / "nvidia.yaml"
    argv = [str(NVIDIA_CDI), "generate", "--watch", "--interval", "100ms", *CDI_ARGS]
    with TightFs(
        mount,
        [*argv, "--output", str(spec)],
        seed={"nvidia.yaml": OLD_SPEC},
        prefill=surroundings == "full",
        read_only=surroundings == "read-only",
    ) as fs:
        log = Log(fs.proc.stderr)
        wait_for(lambda: log.count(f"{reason}: '{spec}'") >= 3, "three failed writes")
        assert fs.proc.poll() is None, log.text()
        assert fs.path("nvidia.yaml").read_bytes() == OLD_SPEC
        assert fs.names() == sorted(["nvidia.yaml", *([FILLER] if surroundings == "full" else [])])
        if surroundings == "full":
            fs.free()
        else:
            fs.remount("rw")
        wait_for(lambda: fs.path("nvidia.yaml").read_bytes() != OLD_SPEC, "the spec written")
        written = yaml.safe_load(fs.path("nvidia.yaml").read_bytes())
        assert written["kind"] == "nvidia.com/gpu"
        assert fs.names() == ["nvidia.yaml"]
        assert stop(fs.proc) == 0
    assert "Traceback" not in log.text()
    assert "keeping the current one" in log.text()


def test_cdi_watch_keeps_its_simulation_when_the_profile_turns_to_garbage(
    tmp_path: Path,
) -> None:
    """The profile is read once per process: a SIGHUP regenerates from the machine
    already loaded, so garbage written over the profile changes nothing until a restart,
    which then fails naming the file."""
    profile = tmp_path / "node.yaml"
    profile.write_text("gpus:\n  - model: T4\n")
    spec = tmp_path / "nvidia.yaml"
    argv = [str(NVIDIA_CDI), "generate", "--nvml-mock", str(profile), "--output", str(spec)]
    argv += ["--nvidia-cdi-hook-path", "/usr/bin/nvidia-cdi-hook"]
    proc = subprocess.Popen(
        [*argv, "--watch", "--interval", "100ms"], stderr=subprocess.PIPE, text=True
    )
    log = Log(proc.stderr)
    try:
        wait_for(spec.exists, "the first spec")
        good = spec.read_bytes()
        profile.write_text("gpus: [{model: Z9000}]\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: log.count("Received SIGHUP, regenerating.") == 1, "the SIGHUP")
        wait_for(lambda: log.count("CDI spec unchanged") >= 1, "the forced pass")
        assert proc.poll() is None
        assert spec.read_bytes() == good
        assert stop(proc) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(10)
        log.close()
    restart = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert restart.returncode == 1
    assert str(profile) in restart.stderr
    assert "Z9000" in restart.stderr
    assert "Traceback" not in restart.stderr
    assert spec.read_bytes() == good
