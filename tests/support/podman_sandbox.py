"""Podman in a sandbox a root CI machine allows: as a real CDI consumer, and for images.

The recipe (verified on Debian 12, podman 4.3.1, crun, hybrid cgroups): podman in a
private mount namespace with the cgroup2 mount removed, the test's spec directories
bind-mounted on /etc/cdi and /var/run/cdi, vfs storage in a scratch directory, no
network, lowered rlimits, and a busybox rootfs made from files on this machine (no image
is pulled). Shared by the end-to-end tests that run containers from generated specs.

`PodmanStorage` is podman with image storage of its own (overlay under a scratch
directory), for building and running the project's image: the same namespace recipe,
with the rlimits from a containers.conf, since `podman build` needs them for its RUN
steps too.

Needs root (mount namespaces; the specs' device nodes are made with mknod). Without
podman or busybox-static the tests fail with the install command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

INSTALL_HINT = "install it with: apt-get install -y podman busybox-static mmdebstrap containerd"
PODMAN_FLAGS = ["--network", "none", "--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]

WRAPPER = r"""#!/bin/sh
# usage: cdi-podman.sh ETC_SPEC_DIR RUN_SPEC_DIR STATE_DIR podman-args...
E=$1; R=$2; S=$3; shift 3
exec unshare -m --propagation private sh -c '
  umount /sys/fs/cgroup/unified 2>/dev/null
  mount --bind "$0" /etc/cdi && mount --bind "$1" /var/run/cdi || exit 99
  S=$2; shift 2
  exec podman --root "$S/storage" --runroot "$S/runroot" --tmpdir "$S/tmp" \
    --storage-driver vfs --cgroup-manager cgroupfs --events-backend file --runtime crun "$@"
' "$E" "$R" "$S" "$@"
"""


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is not installed: {INSTALL_HINT}", pytrace=False)
    return path


def require_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("needs root: mknod and mount namespaces (CI runs as root)", pytrace=False)


@dataclass
class Sandbox:
    scratch: Path
    state: Path  # podman's --root / --runroot parent: the runroot must be <= 50 characters

    @property
    def wrapper(self) -> Path:
        return self.scratch / "cdi-podman.sh"

    @property
    def rootfs(self) -> Path:
        return self.scratch / "rootfs"

    def podman(
        self, spec_dir: Path, *args: str, debug: bool = False, command: str = "run"
    ) -> subprocess.CompletedProcess[str]:
        """podman COMMAND ARGS with `spec_dir` as /var/run/cdi (and an empty /etc/cdi)."""
        etc = self.scratch / "specs-etc"
        etc.mkdir(exist_ok=True)
        pre = ["--log-level", "debug"] if debug else []
        return subprocess.run(
            [str(self.wrapper), str(etc), str(spec_dir), str(self.state), *pre, command,
             *(["--rm"] if command == "run" else []), *PODMAN_FLAGS, *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip

    def explain(self, spec_dir: Path, failed: subprocess.CompletedProcess[str]) -> str:
        """The CDI registry error podman logs only at debug level, for a failed run's args.

        A debug run waits ~20 s for conmon here, so it is used only to explain a failure.
        """
        args = failed.args[failed.args.index("run") + 2 + len(PODMAN_FLAGS) :]
        result = self.podman(spec_dir, *args, debug=True)
        lines = [
            line for line in result.stderr.splitlines() if "refreshing the CDI registry" in line
        ]
        return "\n".join(lines) or failed.stderr[-2000:]


@contextmanager
def podman_sandbox(scratch: Path) -> Iterator[Sandbox]:
    """The wrapper script, a busybox rootfs and the two mount points, under `scratch`."""
    require_root()
    require("podman")
    busybox = require("busybox")
    for tool in ("unshare", "mount", "crun"):
        require(tool)
    state = Path(tempfile.mkdtemp(prefix="cdi-podman-", dir="/tmp"))
    box = Sandbox(scratch.resolve(), state)
    try:
        box.wrapper.write_text(WRAPPER)
        box.wrapper.chmod(0o755)
        for d in ("bin", "proc", "sys", "dev", "etc", "tmp"):
            (box.rootfs / d).mkdir(parents=True)
        shutil.copy(busybox, box.rootfs / "bin/busybox")
        applets = subprocess.run(
            [str(box.rootfs / "bin/busybox"), "--list"], capture_output=True, text=True, check=True
        ).stdout.split()
        for applet in applets:
            if applet != "busybox":  # a self-link would replace the binary
                (box.rootfs / "bin" / applet).symlink_to("busybox")
        for mount_point in ("/etc/cdi", "/var/run/cdi"):
            os.makedirs(mount_point, exist_ok=True)  # empty mount points, once
        yield box
    finally:
        shutil.rmtree(state, ignore_errors=True)


def nvidia_nodes(listing: str) -> dict[str, str]:
    """`ls -ln` lines -> {name: "major, minor"} for the NVIDIA nodes the container has."""
    found = {}
    for line in listing.splitlines():
        parts = line.split()
        if line.startswith("c") and len(parts) >= 10 and parts[-1].startswith("nvidia"):
            found[parts[-1]] = f"{parts[4]} {parts[5]}"
    return found


STORAGE_WRAPPER = r"""#!/bin/sh
# usage: podman.sh podman-args...  (storage under STATE, set below)
STATE='{state}'
export CONTAINERS_CONF='{conf}'
exec unshare -m --propagation private sh -c '
  umount /sys/fs/cgroup/unified 2>/dev/null
  S=$0
  exec podman --root "$S/storage" --runroot "$S/runroot" --tmpdir "$S/tmp" \
    --storage-driver overlay --cgroup-manager cgroupfs --events-backend file \
    --runtime crun "$@"
' "$STATE" "$@"
"""

CONF = """[containers]
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
"""


class PodmanStorage:
    """A podman command line with private storage; `remove()` unmounts and deletes it."""

    def __init__(self) -> None:
        require_root()
        require("podman")
        # The runroot holds sockets: its path must stay short (<= 50 characters).
        self.state = Path(tempfile.mkdtemp(prefix="pm-", dir="/tmp"))
        conf = self.state / "containers.conf"
        conf.write_text(CONF)
        self.command = self.state / "podman.sh"
        self.command.write_text(STORAGE_WRAPPER.format(state=self.state, conf=conf))
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
