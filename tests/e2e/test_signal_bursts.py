"""Bursts of mixed signals to each daemon as a process: none is lost or overwritten.

The daemons as installed: `gpu-feature-discovery` (with `--sleep-interval infinite` and
with a 100 ms interval), `nvidia-device-plugin` against the kubelet double, and
`nvidia-cdi generate --watch`. Each gets bursts of signals sent back to back. A burst
holding a stop signal (SIGTERM, SIGINT, SIGQUIT) ends the process with 0 within 1 s,
naming one stop; a SIGHUP after the stop never turns it into a reload (nor kills the
exiting process). A burst of SIGHUPs alone reloads at least once and the process goes
on serving.

A reload held open by the test (the config file is a FIFO the test feeds, so the reload
waits in its read) gets SIGTERM, SIGINT and SIGHUP one by one: the first stop wins,
within 1 s of the release; or another SIGHUP: the daemon reloads once more.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubelet_double import KubeletDouble

STOP_WITHIN = 1.0  # seconds, from the signal (or the held reload's release) to the exit
# measured 0.015-0.114 s across this file's tests (3 runs)
STOPS = ("TERM", "INT", "QUIT")


@dataclass(frozen=True)
class Kind:
    """One daemon as the test drives it, and the log lines that tell what it did."""

    name: str
    ready: str  # logged once serving, after the start and after every reload
    reload: str  # logged when it acts on a SIGHUP
    stop: str  # logged when it acts on a stop signal; {} is the signal's name
    args: Callable[[Path, Path | None], list[str]]  # (tmp_path, config file) -> argv


def _command(name: str) -> str:
    path = Path(sys.executable).parent / name
    if not path.exists():
        pytest.fail(f"{path} is missing: install the project (pip install -e .) into this venv")
    return str(path)


def _gfd(interval: str) -> Callable[[Path, Path | None], list[str]]:
    def args(tmp_path: Path, config: Path | None) -> list[str]:
        argv = [_command("gpu-feature-discovery"), "--nvml-mock", "t4"]
        argv += ["--sleep-interval", interval, "--output-file", str(tmp_path / "gfd")]
        return argv + (["--config-file", str(config)] if config else [])

    return args


def _plugin(tmp_path: Path, config: Path | None) -> list[str]:
    argv = [_command("nvidia-device-plugin"), "--nvml-mock", "t4"]
    argv += ["--kubelet-socket", str(tmp_path / "dp" / "kubelet.sock")]
    argv += ["--cdi-spec-dir", str(tmp_path / "cdi")]
    return argv + (["--config-file", str(config)] if config else [])


def _cdi(tmp_path: Path, config: Path | None) -> list[str]:
    assert config is None, "nvidia-cdi has no config file"
    argv = [_command("nvidia-cdi"), "generate", "--watch", "--interval", "100ms"]
    argv += ["--nvml-mock", "t4", "--output", str(tmp_path / "cdi" / "nvidia.yaml")]
    return [*argv, "--nvidia-cdi-hook-path", "/usr/bin/nvidia-cdi-hook"]


GFD_RELOAD = "Received SIGHUP, restarting."
GFD_STOP = "Received signal SIG{}, shutting down."
GFD_INFINITE = Kind("gfd-infinite", "Writing labels", GFD_RELOAD, GFD_STOP, _gfd("infinite"))
GFD_PERIODIC = Kind("gfd-100ms", "Writing labels", GFD_RELOAD, GFD_STOP, _gfd("100ms"))
PLUGIN = Kind(
    "plugin",
    "Registered device plugin for 'nvidia.com/gpu' with Kubelet",
    "Received SIGHUP, restarting.",
    'Received signal "SIG{}", shutting down.',
    _plugin,
)
CDI = Kind(
    "cdi-watch",
    "Generated CDI spec",
    "Received SIGHUP, regenerating.",
    "Received signal SIG{}, shutting down.",
    _cdi,
)
KINDS = [pytest.param(kind, id=kind.name) for kind in (GFD_INFINITE, GFD_PERIODIC, PLUGIN, CDI)]
WITH_CONFIG = [pytest.param(kind, id=kind.name) for kind in (GFD_INFINITE, GFD_PERIODIC, PLUGIN)]


class Daemon:
    """A daemon process whose standard error is read line by line as it comes."""

    def __init__(self, kind: Kind, argv: list[str], env: dict[str, str]) -> None:
        self.kind = kind
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def close(self) -> None:
        """Kill the process if it still runs, and read its log to the end."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(10)
        assert self.proc.stderr is not None
        self.proc.stderr.close()

    @property
    def log(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def find(self, text: str, start: int = 0) -> int | None:
        """The index of the first line from `start` on that holds `text`."""
        with self._changed:
            for index in range(start, len(self.lines)):
                if text in self.lines[index]:
                    return index
        return None

    def wait_line(self, text: str, start: int = 0, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        with self._changed:
            while (index := self.find(text, start)) is None:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    pytest.fail(f"{text!r} not logged (from line {start}):\n{self.log}")
                self._changed.wait(min(left, 0.1))
        return index

    def mark(self) -> int:
        with self._changed:
            return len(self.lines)

    def send(self, *names: str) -> None:
        for name in names:
            self.proc.send_signal(getattr(signal, f"SIG{name}"))

    def wait_delivered(self, name: str, timeout: float = 20.0) -> None:
        """Until SIG`name` is pending nowhere in the process: the kernel handed it to a
        thread, whose handler recorded it (nvlib/signals.py) before that thread went on."""
        bit = 1 << (getattr(signal, f"SIG{name}") - 1)
        deadline = time.monotonic() + timeout
        while _pending(self.proc.pid) & bit:
            if time.monotonic() > deadline:
                pytest.fail(f"SIG{name} still pending after {timeout} s:\n{self.log}")
            time.sleep(0.005)

    def wait_exit(self, since: float) -> float:
        """Seconds from `since` to the exit, which must come within 5 s; exit code 0."""
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.kind.name} did not exit within 5 s:\n{self.log}")
        elapsed = time.monotonic() - since
        self._reader.join(10)  # the whole log, up to the exit
        assert code == 0, self.log
        return elapsed

    def stopped_by(self, names: Collection[str], start: int) -> None:
        """Stopped once, by one of SIG`names`."""
        stops = [self.find(self.kind.stop.format(name), start) for name in STOPS]
        assert sum(index is not None for index in stops) == 1, self.log
        stopped = STOPS[next(i for i, index in enumerate(stops) if index is not None)]
        assert stopped in names, self.log


def _pending(pid: int) -> int:
    """The signals pending for the process (ShdPnd) or any of its threads (SigPnd)."""
    pending = 0
    proc = Path(f"/proc/{pid}")
    for status in [proc / "status", *proc.glob("task/*/status")]:
        try:
            text = status.read_text()
        except (FileNotFoundError, ProcessLookupError):  # a thread that ended meanwhile
            continue
        for line in text.splitlines():
            if line.startswith(("ShdPnd:", "SigPnd:")):
                pending |= int(line.split()[1], 16)
    return pending


def _environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GFD_", "NVML_MOCK"))}
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "CONFIG_FILE"):
        env.pop(name, None)
    return env


@contextmanager
def started(kind: Kind, tmp_path: Path, config: HeldConfig | None = None) -> Iterator[Daemon]:
    """The daemon, serving (its config fed once when held); killed if the test failed."""
    with ExitStack() as stack:
        if kind is PLUGIN:
            stack.enter_context(KubeletDouble(tmp_path / "dp", connect=False))
        daemon = Daemon(kind, kind.args(tmp_path, config.path if config else None), _environment())
        try:
            if config is not None:
                config.feed()
            daemon.wait_line(kind.ready)
            yield daemon
        finally:
            daemon.close()


class HeldConfig:
    """A config file that is a FIFO: every read of it waits until the test feeds it."""

    TEXT = b"version: v1\n"

    def __init__(self, path: Path) -> None:
        os.mkfifo(path)
        self.path = path

    def hold(self, timeout: float = 20.0) -> int:
        """Wait until the daemon opens the file; it then waits in its read until `release`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as err:  # ENXIO: nobody is reading the FIFO yet
                if err.errno != errno.ENXIO:
                    raise
            if time.monotonic() > deadline:
                pytest.fail(f"the daemon did not read {self.path} within {timeout} s")
            time.sleep(0.005)

    def release(self, fd: int) -> None:
        os.write(fd, self.TEXT)
        os.close(fd)

    def feed(self) -> None:
        self.release(self.hold())


def measured(request: pytest.FixtureRequest, seconds: float) -> None:
    """Keep the stop latency in the test's report (a JUnit XML property)."""
    request.node.user_properties.append(("stop_seconds", round(seconds, 3)))


BURSTS = [
    pytest.param(("HUP",), id="HUP"),
    pytest.param(("HUP", "HUP", "HUP"), id="HUP-HUP-HUP"),
    pytest.param(("TERM",), id="TERM"),
    pytest.param(("TERM", "HUP"), id="TERM-HUP"),
    pytest.param(("HUP", "TERM"), id="HUP-TERM"),
    pytest.param(("HUP", "HUP", "TERM", "HUP"), id="HUP-HUP-TERM-HUP"),
    pytest.param(("INT", "HUP", "HUP"), id="INT-HUP-HUP"),
    pytest.param(("QUIT", "TERM", "HUP"), id="QUIT-TERM-HUP"),
]


@pytest.mark.parametrize("burst", BURSTS)
@pytest.mark.parametrize("kind", KINDS)
def test_burst(
    kind: Kind, burst: tuple[str, ...], tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    with started(kind, tmp_path) as daemon:
        before = daemon.mark()
        sent = time.monotonic()
        daemon.send(*burst)
        stops = [name for name in burst if name in STOPS]
        if not stops:  # reloads only: at least one reload, and it serves again
            reloaded = daemon.wait_line(kind.reload, before)
            daemon.wait_line(kind.ready, reloaded + 1)
            assert daemon.proc.poll() is None, daemon.log
            before = daemon.mark()
            sent = time.monotonic()
            daemon.send("TERM")
            stops = ["TERM"]
        elapsed = daemon.wait_exit(sent)
        measured(request, elapsed)
        assert elapsed < STOP_WITHIN, f"stopped after {elapsed:.3f} s"
        # Stop signals pending together are delivered in no particular order: any one.
        daemon.stopped_by(stops, before)
        if burst[0] in STOPS:  # a SIGHUP after a stop is never acted on
            assert daemon.find(kind.reload, before) is None, daemon.log


@pytest.mark.parametrize("kind", WITH_CONFIG)
def test_stop_during_a_reload_is_not_replaced_by_later_signals(
    kind: Kind, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    config = HeldConfig(tmp_path / "config.yaml")
    with started(kind, tmp_path, config) as daemon:
        before = daemon.mark()
        daemon.send("HUP")
        daemon.wait_line(kind.reload, before)
        held = config.hold()  # the reload now waits in its read of the config file
        for name in ("TERM", "INT", "HUP"):  # one by one: each delivered before the next
            daemon.send(name)
            daemon.wait_delivered(name)
        released = time.monotonic()
        config.release(held)
        elapsed = daemon.wait_exit(released)
        measured(request, elapsed)
        assert elapsed < STOP_WITHIN, f"stopped after {elapsed:.3f} s"
        daemon.stopped_by(["TERM"], before)  # the first stop, not the later one
        reloads = [line for line in daemon.lines[before:] if kind.reload in line]
        assert len(reloads) == 1, daemon.log


@pytest.mark.parametrize("kind", WITH_CONFIG)
def test_sighup_during_a_reload_reloads_again(kind: Kind, tmp_path: Path) -> None:
    config = HeldConfig(tmp_path / "config.yaml")
    with started(kind, tmp_path, config) as daemon:
        before = daemon.mark()
        daemon.send("HUP")
        first = daemon.wait_line(kind.reload, before)
        held = config.hold()
        daemon.send("HUP")
        daemon.wait_delivered("HUP")  # during the reload, not after it
        config.release(held)
        second = daemon.wait_line(kind.reload, first + 1)
        config.feed()
        daemon.wait_line(kind.ready, second + 1)
        assert daemon.proc.poll() is None, daemon.log
        before = daemon.mark()
        sent = time.monotonic()
        daemon.send("TERM")
        assert daemon.wait_exit(sent) < STOP_WITHIN
        daemon.stopped_by(["TERM"], before)
