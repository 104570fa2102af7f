"""Podman with storage of its own, runnable as root in a CI sandbox.

The CI machine runs as root with hybrid cgroups, no systemd and hard rlimits it may not
raise: podman works there in a private mount namespace with the cgroup2 mount removed,
cgroupfs, a file events backend, and lowered nofile/nproc limits (which `podman build`
needs for its RUN steps too, so they come from a containers.conf rather than flags). The
storage (`--root`, `--runroot`) lives in a scratch directory, so tests never touch the
machine's images. `command` is a script that takes podman's arguments: what
tools/build_image.py's `--podman` expects.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

INSTALL_HINT = "install it with: apt-get install -y podman mmdebstrap containerd"

WRAPPER = r"""#!/bin/sh
# usage: podman.sh podman-args...  (storage under STATE, set below)
STATE='{state}'
export CONTAINERS_CONF='{conf}'
exec unshare -m --propagation private sh -c '
  umount /sys/fs/cgroup/unified 2>/dev/null
  S=$0
  exec podman --root "$S/storage" --runroot "$S/runroot" --storage-driver overlay \
    --cgroup-manager cgroupfs --events-backend file --runtime crun "$@"
' "$STATE" "$@"
"""

CONF = """[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
"""


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: {INSTALL_HINT}", pytrace=False)
    return path


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root: podman's storage and mount namespaces", pytrace=False)


class PodmanSandbox:
    """A podman command line with private storage; `remove()` unmounts and deletes it."""

    def __init__(self) -> None:
        require_root()
        require("podman")
        # The runroot holds sockets: its path must stay short (<= 50 characters).
        self.state = Path(tempfile.mkdtemp(prefix="pm-", dir="/tmp"))
        conf = self.state / "containers.conf"
        conf.write_text(CONF)
        self.command = self.state / "podman.sh"
        self.command.write_text(WRAPPER.format(state=self.state, conf=conf))
        self.command.chmod(0o755)

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.command), *args], capture_output=True, text=True, timeout=timeout
        )

    def check(self, *args: str, timeout: float = 300) -> str:
        done = self.run(*args, timeout=timeout)
        assert done.returncode == 0, f"podman {' '.join(args)}: {done.stderr}"
        return done.stdout

    def remove(self) -> None:
        # `system reset` unmounts and deletes the storage podman made; then the scratch.
        self.run("system", "reset", "--force", timeout=120)
        shutil.rmtree(self.state, ignore_errors=True)
