"""Kill soak: `python bench/kill_soak.py [--kills N] [--seed S] [--json PATH] [WRITER...]`.

SIGKILLs each of the project's file writers at random moments, N times each (default
1000), and after every kill checks its output:

- gfd: `gpu-feature-discovery --oneshot --output-file` (the NFD feature file), a new
  `--machine-type-file` value each run so that every run writes;
- cdi: `nvidia-cdi generate --output` (the CDI spec);
- plugin: `nvidia-device-plugin --device-list-strategy cdi-cri`, its own
  `nvidia-device-plugin.yaml` (it writes at start, then serves until killed).

Each runs on the simulated dgx-a100; every run's simulator root is new, so every run
writes new bytes. Half the kills land at a uniformly random moment of a run (from the
spawn to 1.2x the median time a run takes to write), half the moment the writer's temp
file appears in the directory (inotify), i.e. inside the write. Counted after each kill:

- torn: the output exists but does not parse or validate (labels: `key=value` lines,
  the same keys as a complete run's; specs: `cdi.load.read_spec` finds no problem and
  the same device names as a complete run's);
- missing: the output is absent although a good one was written before;
- mid-write: a temp file `.<name>...` was left, i.e. the kill fell between its creation
  and the rename (counted, then removed: readers ignore dot-files);
- finished first: a one-shot writer that exited before the kill; its run is checked
  too, but does not count as a kill.

Goal: 0 torn and 0 missing of N for each writer. Prints counts and the kill rate.
As root, each writer runs in a private mount namespace with its own /dev/shm, so the
simulator root a killed run cannot remove goes with it; otherwise those roots stay in
/dev/shm (the line says so). Not a pass/fail test; tests/e2e/test_kill_soak.py runs
a short soak in CI.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import os
import random
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # `cdi.load` validates the specs

BIN = Path(sys.executable).parent
PROFILE = "dgx-a100"
CALIBRATION_RUNS = 3
SPAN_FACTOR = 1.2
WRITE_WAIT = 30.0  # seconds for a run to start its write before it is killed anyway
_IN_CREATE = 0x00000100
_EVENT = struct.Struct("iIII")


@dataclass
class Counts:
    writer: str
    kills: int = 0
    runs: int = 0
    torn: int = 0
    missing: int = 0
    mid_write: int = 0
    finished_first: int = 0
    writes_seen: int = 0  # runs after which the output was another file (renamed in)
    write_starts_seen: int = 0  # runs whose temp file appeared before the kill
    seconds: float = 0.0
    first_problems: list[str] = field(default_factory=list)

    def problem(self, text: str) -> None:
        if len(self.first_problems) < 5:
            self.first_problems.append(text)


def _command(script: str, module: str) -> list[str]:
    path = BIN / script
    return [str(path)] if path.exists() else [sys.executable, "-m", module]


class Writer:
    """One writer: how to run it, where it writes, what a complete output is."""

    name = ""
    output_name = ""
    one_shot = True

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.out_dir = directory / "out"
        self.out_dir.mkdir(parents=True)
        self.output = self.out_dir / self.output_name
        self.reference: object = None

    def argv(self, run: int) -> list[str]:
        raise NotImplementedError

    def problem(self, path: Path) -> str | None:
        """Why the output at `path` is not a complete one; None when it is."""
        raise NotImplementedError

    def learn(self) -> None:
        """Take what a complete output holds from the one written now."""
        raise NotImplementedError


class FeatureFileWriter(Writer):
    name = "gfd feature file"
    output_name = "gfd"

    def argv(self, run: int) -> list[str]:
        machine = self.directory / "machine-type"
        machine.write_text(f"soak-{run}\n")
        return [
            *_command("gpu-feature-discovery", "gfd"),
            "--oneshot", "--use-node-feature-api", "false", "--nvml-mock", PROFILE,
            "--output-file", str(self.output), "--machine-type-file", str(machine),
        ]  # fmt: skip

    @staticmethod
    def _labels(path: Path) -> dict[str, str] | str:
        text = path.read_text()
        if not text.endswith("\n"):
            return "no final newline"
        labels: dict[str, str] = {}
        for number, line in enumerate(text.splitlines(), 1):
            key, sep, value = line.partition("=")
            if not sep or not key:
                return f"line {number} is not key=value: {line[:60]!r}"
            labels[key] = value
        return labels

    def problem(self, path: Path) -> str | None:
        labels = self._labels(path)
        if isinstance(labels, str):
            return labels
        if set(labels) != self.reference:
            return f"labels differ: {sorted(set(labels) ^ set(self.reference))[:3]}"  # type: ignore[arg-type]
        if not labels.get("nvidia.com/gpu.machine", "").startswith("soak-"):
            return "no machine label of this soak"
        return None

    def learn(self) -> None:
        labels = self._labels(self.output)
        if isinstance(labels, str):
            raise SystemExit(f"{self.name}: a complete run wrote a bad file: {labels}")
        self.reference = set(labels)


class SpecWriter(Writer):
    """A CDI spec writer: valid as a container engine reads it, with every device."""

    def problem(self, path: Path) -> str | None:
        from cdi.load import read_spec

        spec, problems = read_spec(str(path))
        if spec is None:
            return str(problems[0]) if problems else "unreadable"
        names = {d.name for d in spec.devices}
        if names != self.reference:
            return f"devices differ: {sorted(names ^ self.reference)[:3]}"  # type: ignore[operator]
        return None

    def learn(self) -> None:
        from cdi.load import read_spec

        spec, problems = read_spec(str(self.output))
        if spec is None:
            raise SystemExit(f"{self.name}: a complete run wrote a bad spec: {problems}")
        self.reference = {d.name for d in spec.devices}


class GeneratorWriter(SpecWriter):
    name = "cdi spec (nvidia-cdi generate)"
    output_name = "nvidia.yaml"

    def argv(self, run: int) -> list[str]:
        return [
            *_command("nvidia-cdi", "cdi"),
            "generate", "--nvml-mock", PROFILE, "--output", str(self.output),
        ]  # fmt: skip


class PluginWriter(SpecWriter):
    name = "plugin's own cdi spec"
    output_name = "nvidia-device-plugin.yaml"
    one_shot = False

    def argv(self, run: int) -> list[str]:
        # nothing listens on the kubelet socket: registration fails and is retried in
        # 30 s, long after the spec is written; its sockets stay in the soak directory
        return [
            *_command("nvidia-device-plugin", "deviceplugin"),
            "--nvml-mock", PROFILE, "--device-list-strategy", "cdi-cri",
            "--kubelet-socket", str(self.directory / "device-plugins" / "kubelet.sock"),
            "--cdi-spec-dir", str(self.out_dir),
        ]  # fmt: skip


WRITERS: dict[str, Callable[[Path], Writer]] = {
    "gfd": FeatureFileWriter,
    "cdi": GeneratorWriter,
    "plugin": PluginWriter,
}


class DirectoryWatch:
    """Names created in one directory, through inotify (non-blocking, select()able)."""

    def __init__(self, directory: Path) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0 or libc.inotify_add_watch(self.fd, os.fsencode(directory), _IN_CREATE) < 0:
            raise OSError(ctypes.get_errno(), "inotify", str(directory))

    def _names(self) -> list[str]:
        names = []
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return names
        offset = 0
        while offset + _EVENT.size <= len(data):
            length = _EVENT.unpack_from(data, offset)[3]
            raw = data[offset + _EVENT.size : offset + _EVENT.size + length]
            names.append(os.fsdecode(raw.split(b"\0", 1)[0]))
            offset += _EVENT.size + length
        return names

    def drain(self) -> None:
        while self._names():
            pass

    def wait_for(self, prefix: str, deadline: float, alive: Callable[[], bool]) -> bool:
        """True as soon as a name starting with `prefix` is created; False at the
        deadline or once `alive()` says the writer is gone."""
        while time.monotonic() < deadline and alive():
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready and any(n.startswith(prefix) for n in self._names()):
                return True
        return False


def private_shm_prefix() -> list[str]:
    """`unshare -m` with a tmpfs on /dev/shm, when this machine allows it, else []."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return []
    wrapper = ["unshare", "-m", "sh", "-c", 'mount -t tmpfs tmpfs /dev/shm && exec "$@"', "sh"]
    probe = subprocess.run([*wrapper, "true"], capture_output=True, check=False)
    return wrapper if probe.returncode == 0 else []


def identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def spawn(prefix: list[str], argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*prefix, *argv], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def calibrate(writer: Writer, prefix: list[str], env: dict[str, str]) -> float:
    """Median seconds from spawn to the output written; leaves a complete output."""
    times = []
    for run in range(CALIBRATION_RUNS):
        before = identity(writer.output)
        start = time.monotonic()
        proc = spawn(prefix, writer.argv(-1 - run), env)
        try:
            if writer.one_shot:
                if proc.wait(60) != 0:
                    raise SystemExit(f"{writer.name}: a complete run failed")
            else:
                while identity(writer.output) in (before, None):
                    if proc.poll() is not None or time.monotonic() - start > 60:
                        raise SystemExit(f"{writer.name}: no output written")
                    time.sleep(0.001)
            times.append(time.monotonic() - start)
        finally:
            proc.kill()
            proc.wait()
    writer.learn()
    return statistics.median(times)


def soak(writer: Writer, kills: int, rng: random.Random, prefix: list[str]) -> Counts:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONPATH": str(REPO)}
    span = calibrate(writer, prefix, env) * SPAN_FACTOR
    counts = Counts(writer.name)
    watch = DirectoryWatch(writer.out_dir)
    temp_prefix = f".{writer.output_name}"
    start = time.monotonic()
    run = 0
    while counts.kills < kills:
        run += 1
        at_write = run % 2 == 0
        watch.drain()
        before = identity(writer.output)
        proc = spawn(prefix, writer.argv(run), env)
        if at_write:
            alive = lambda p=proc: p.poll() is None  # noqa: E731
            if watch.wait_for(temp_prefix, time.monotonic() + WRITE_WAIT, alive):
                counts.write_starts_seen += 1
        else:
            time.sleep(rng.uniform(0, span))
        proc.send_signal(signal.SIGKILL)
        code = proc.wait()
        counts.runs += 1
        if code == -signal.SIGKILL:
            counts.kills += 1
        elif code == 0:
            counts.finished_first += 1
        else:
            raise SystemExit(f"{writer.name}: run {run} failed with status {code}")
        left = [p for p in writer.out_dir.iterdir() if p.name.startswith(temp_prefix)]
        if left:
            counts.mid_write += 1
            for path in left:
                path.unlink()
        now = identity(writer.output)
        if now is None:
            counts.missing += 1
            counts.problem(f"run {run}: output missing")
            continue
        if now != before:
            counts.writes_seen += 1
        problem = writer.problem(writer.output)
        if problem is not None:
            counts.torn += 1
            counts.problem(f"run {run}: {problem}")
    counts.seconds = time.monotonic() - start
    os.close(watch.fd)
    return counts


def report(counts: Counts, kills: int, private_shm: bool) -> None:
    ok = counts.torn == 0 and counts.missing == 0 and counts.kills == kills
    rate = counts.kills / counts.seconds if counts.seconds else 0.0
    print(
        f"kill-soak {counts.writer:<31} {counts.kills:5d} kills  torn {counts.torn:4d}  "
        f"missing {counts.missing:4d}  goal 0 of {kills}  {'ok' if ok else 'OVER'}  "
        f"({counts.mid_write} mid-write, {counts.writes_seen} writes seen, "
        f"{counts.finished_first} finished first, {rate:.2f} kills/s)",
        flush=True,
    )
    for text in counts.first_problems:
        print(f"    {text}", flush=True)
    if not private_shm:
        print("    (not root: the simulator roots of killed runs stay in /dev/shm)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("writers", nargs="*", help=f"any of {', '.join(WRITERS)} (default: all)")
    parser.add_argument("--kills", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the counts here too")
    args = parser.parse_args()
    unknown = [w for w in args.writers if w not in WRITERS]
    if unknown:
        parser.error(f"unknown writer {unknown[0]!r}: choose from {', '.join(WRITERS)}")
    seed = args.seed if args.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    prefix = private_shm_prefix()
    print(f"kill-soak seed {seed}, {args.kills} kills per writer", flush=True)
    results = []
    for key in args.writers or list(WRITERS):
        with tempfile.TemporaryDirectory(prefix="kill-soak-") as tmp:
            counts = soak(WRITERS[key](Path(tmp)), args.kills, rng, prefix)
        report(counts, args.kills, bool(prefix))
        results.append(asdict(counts) | {"key": key})
    if args.json is not None:
        args.json.write_text(json.dumps({"seed": seed, "writers": results}, indent=2))


if __name__ == "__main__":
    main()
