"""The generator beside the device plugin's spec file (`cdi.owners`): no name twice.

A table of what the plugin's file holds and what the generator then writes (the names
left to the plugin taken out, the version lowered again; another kind, an invalid or
absent file change nothing; every device held: no spec of ours at all); the directory
lock (exclusive across processes, a timeout naming the directory, released by a holder
killed with SIGKILL); and `--watch` taking back a name the plugin lets go.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from cdi_fixtures import VERSION, build_driver_root

from cdi import run
from cdi.cli import GenerateSettings
from cdi.load import parse_spec
from cdi.owners import (
    PLUGIN_SPEC_FILE,
    LockTimeout,
    held_by_plugin,
    spec_dir_lock,
    write_beside_plugin,
)
from cdi.spec import Spec
from nvlib import sim

UUIDS = ("GPU-aaaa", "GPU-bbbb")


def spec_text(names: tuple[str, ...], kind: str = "nvidia.com/gpu", host_path: bool = False) -> str:
    def device(name: str, i: int) -> str:
        node = f"    - path: /dev/nvidia{i}\n"
        if host_path and name.startswith("GPU-"):
            node += f"      hostPath: /host/dev/nvidia{i}\n"
        return f'- name: "{name}"\n  containerEdits:\n    deviceNodes:\n{node}'

    devices = "".join(device(n, i) for i, n in enumerate(names))
    return f"---\ncdiVersion: 0.5.0\nkind: {kind}\ndevices:\n{devices}"


def generated() -> Spec:
    """What the generator builds (type-index and UUID names, `all`), with a hostPath only
    on the UUID devices: without them the spec needs only cdiVersion 0.3.0."""
    spec, problems = parse_spec(spec_text(("gpu0", "gpu1", *UUIDS, "all"), host_path=True))
    assert spec is not None, problems
    return spec


def names_in(path: Path) -> list[str]:
    return [d["name"] for d in yaml.safe_load(path.read_text())["devices"]]


@pytest.mark.parametrize(
    ("plugin_file", "written"),
    [
        pytest.param(None, ["gpu0", "gpu1", *UUIDS, "all"], id="no-plugin-file"),
        pytest.param(spec_text((UUIDS[1],)), ["gpu0", "gpu1", UUIDS[0], "all"], id="one-held"),
        pytest.param(spec_text(UUIDS), ["gpu0", "gpu1", "all"], id="uuids-held"),
        pytest.param(
            spec_text(UUIDS, kind="example.com/gpu"),
            ["gpu0", "gpu1", *UUIDS, "all"],
            id="other-kind",
        ),
        pytest.param("{not: [yaml", ["gpu0", "gpu1", *UUIDS, "all"], id="unreadable"),
        pytest.param(spec_text(("gpu0", "gpu1", *UUIDS, "all")), None, id="every-device-held"),
    ],
)
def test_names_the_plugin_holds_are_left_out(
    tmp_path: Path, plugin_file: str | None, written: list[str] | None
) -> None:
    out = tmp_path / "nvidia.yaml"
    out.write_text(spec_text(("stale",)))
    if plugin_file is not None:
        (tmp_path / PLUGIN_SPEC_FILE).write_text(plugin_file)
    done = write_beside_plugin(generated(), str(out), "yaml", 1.0)
    if written is None:
        assert done == "removed" and not out.exists()
        return
    assert done == "written"
    assert names_in(out) == written
    # without the UUID devices (the only ones with a hostPath) the version drops to 0.3.0
    version = yaml.safe_load(out.read_text())["cdiVersion"]
    assert version == ("0.5.0" if set(UUIDS) & set(written) else "0.3.0")
    if plugin_file is not None:
        assert (tmp_path / PLUGIN_SPEC_FILE).read_text() == plugin_file  # never touched


def test_output_named_like_the_plugin_file_is_written_whole(tmp_path: Path) -> None:
    out = tmp_path / PLUGIN_SPEC_FILE
    out.write_text(spec_text(UUIDS))
    assert write_beside_plugin(generated(), str(out), "yaml", 1.0) == "written"
    assert names_in(out) == ["gpu0", "gpu1", *UUIDS, "all"]


def test_unchanged_bytes_are_not_rewritten(tmp_path: Path) -> None:
    out = tmp_path / "nvidia.yaml"
    assert write_beside_plugin(generated(), str(out), "yaml", 1.0) == "written"
    assert write_beside_plugin(generated(), str(out), "yaml", 1.0) == "unchanged"


def test_held_by_plugin(tmp_path: Path) -> None:
    output = str(tmp_path / "nvidia.yaml")
    assert held_by_plugin(output) == frozenset()
    (tmp_path / PLUGIN_SPEC_FILE).write_text(spec_text(UUIDS))
    assert held_by_plugin(output) == {f"nvidia.com/gpu={u}" for u in UUIDS}
    assert held_by_plugin("-") == frozenset()


HOLD = """
import sys, time
from cdi.owners import spec_dir_lock
with spec_dir_lock(sys.argv[1], 5):
    print("held", flush=True)
    time.sleep(60)
"""


def test_lock_is_exclusive_across_processes_and_dies_with_its_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        start = time.monotonic()
        with pytest.raises(LockTimeout) as raised, spec_dir_lock(tmp_path, 0.2):
            pass
        assert time.monotonic() - start >= 0.2
        assert str(tmp_path) in str(raised.value) and "held the lock" in str(raised.value)
        # the generator gives up too, writing nothing
        with pytest.raises(LockTimeout):
            write_beside_plugin(generated(), str(tmp_path / "nvidia.yaml"), "yaml", 0.2)
        assert not (tmp_path / "nvidia.yaml").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(5)
        assert holder.stdout is not None
        holder.stdout.close()
    with spec_dir_lock(tmp_path, 5):  # the kernel released the dead holder's lock
        pass


def test_lock_within_one_process_excludes_too(tmp_path: Path) -> None:
    """flock belongs to the open descriptor: the plugin's loop and a generator thread
    of one process (as in the tests) exclude each other as two processes do."""
    entered = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with spec_dir_lock(tmp_path, 5):
            entered.set()
            release.wait(5)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert entered.wait(5)
        with pytest.raises(LockTimeout), spec_dir_lock(tmp_path, 0.1):
            pass
    finally:
        release.set()
        thread.join(5)
    with spec_dir_lock(tmp_path, 1):
        pass


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as raised, spec_dir_lock(tmp_path / "gone", 1):
        pass
    assert str(tmp_path / "gone") in str(raised.value)


def test_watch_takes_back_a_name_the_plugin_lets_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The plugin held the GPU's UUID name; once its file no longer defines it, the next
    pass of `--watch` (the node unchanged) defines it again."""
    root = build_driver_root(tmp_path / "driver", gpus=1, libraries=("libcuda.so",))
    profile = tmp_path / "a100.yaml"
    profile.write_text(f'driver: "{VERSION}"\ngpus:\n  - model: A100-SXM4-40GB\n')
    host = run.Host(str(tmp_path / "host"), str(root.path), str(root.path), root.nodes)
    monkeypatch.setattr(run, "resolve_host", lambda _settings: host)
    spec_dir = tmp_path / "cdi"
    spec_dir.mkdir()
    out = spec_dir / "nvidia.yaml"
    settings = GenerateSettings(
        output=str(out), driver_root=str(root.path), hook_path="/x/nvidia-cdi-hook",
        interval_ns=20_000_000,
    )  # fmt: skip
    control = run.WatchControl()
    with sim.activate(profile) as simulation:
        uuid = simulation.profile.gpus[0].uuid
        plugin_file = spec_dir / PLUGIN_SPEC_FILE
        plugin_file.write_text(spec_text((uuid,)))
        thread = threading.Thread(target=run.watch, args=(settings,), kwargs={"control": control})
        thread.start()
        try:
            until(lambda: out.exists() and names_in(out) == ["0", "all"], "the first spec")
            plugin_file.write_text(spec_text(("GPU-other",)))  # the plugin let it go
            until(lambda: names_in(out) == ["0", uuid, "all"], "the name taken back")
        finally:
            control.stop()
            thread.join(5)
    assert not thread.is_alive()


def until(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
