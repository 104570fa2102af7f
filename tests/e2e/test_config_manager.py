"""Per-node configuration end to end: a node label switches a running device plugin's
resources, through `config-manager`, as the chart runs it.

Processes, as in the pod: `config-manager --oneshot` (the init container) writes the
config the unlabelled node gets; the plugin (started from a console-script launcher, as
the image starts it) registers with the kubelet double; the config-manager sidecar
watches the Node on the Node API double (tests/support/node_api.py). Labelling the node
`time-sliced` makes the sidecar write that config and SIGHUP the plugin, which
re-registers with 4 replicas of the GPU; removing the label switches it back. Between
the switches the API double drops the watch (the sidecar resumes from the version it
had: no re-list) and expires it with 410 Gone (the sidecar re-lists). Then SIGTERM
ends both with 0. The same beside GFD: the label's config reaches its labels. Each daemon
is named to the sidecar by its launcher's full path, so that no other process of the
machine with the command's name can be the one signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubelet_double import KubeletDouble
from node_api import NodeApiFake

from nvlib.heartbeat import check

REPO = Path(__file__).resolve().parents[2]
GPU = "nvidia.com/gpu"
LABEL = "nvidia.com/device-plugin.config"
NODE = "gpu-node-1"
CONFIGS = {
    "default": "version: v1\n",
    "time-sliced": (
        "version: v1\nsharing:\n  timeSlicing:\n    resources:\n"
        "      - name: nvidia.com/gpu\n        replicas: 4\n"
    ),
}


class Process:
    """A child process whose standard error is collected line by line."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.proc = subprocess.Popen(
            argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_log(self, text: str, count: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while sum(text in line for line in self.lines) < count:
                left = deadline - time.monotonic()
                assert left > 0 and self.proc.poll() is None, (
                    f"no {count}x {text!r} in:\n{''.join(self.lines)}"
                )
                self._changed.wait(min(left, 0.5))

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=15)
        finally:
            self.proc.kill()
            self.proc.wait()
            assert self.proc.stderr is not None
            self.proc.stderr.close()

    @property
    def log(self) -> str:
        with self._changed:
            return "".join(self.lines)


def environment(**extra: str) -> dict[str, str]:
    return {
        "PYTHONPATH": str(REPO),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **extra,
    }


@pytest.fixture
def api() -> Iterator[NodeApiFake]:
    with NodeApiFake() as fake:
        fake.put_node(NODE, {"kubernetes.io/hostname": NODE})
        yield fake
    assert fake.refusals == [], fake.refusals


def test_label_switches_the_plugin_resources(api: NodeApiFake, tmp_path: Path) -> None:
    srcdir = tmp_path / "available-configs"
    srcdir.mkdir()
    for name, text in CONFIGS.items():
        (srcdir / name).write_text(text)
    (tmp_path / "config").mkdir()
    dst = tmp_path / "config" / "config.yaml"
    heartbeat = tmp_path / "heartbeat" / "config-manager"
    heartbeat.parent.mkdir()
    common = {
        "NODE_NAME": NODE,
        "KUBECONFIG": api.write_kubeconfig(tmp_path / "kubeconfig"),
        "CONFIG_FILE_SRCDIR": str(srcdir),
        "CONFIG_FILE_DST": str(dst),
        "DEFAULT_CONFIG": "",
        "FALLBACK_STRATEGIES": "named,single",
    }
    manager = [sys.executable, "-m", "configmanager"]

    # the init container
    init = subprocess.run(
        manager, env=environment(**common, ONESHOT="true", SEND_SIGNAL="false"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert init.returncode == 0, init.stderr
    assert dst.read_text() == CONFIGS["default"]

    # the plugin, started as its console script is: `python <path of the script>`
    launcher = tmp_path / "bin" / "nvidia-device-plugin"
    launcher.parent.mkdir()
    launcher.write_text("import sys\nfrom deviceplugin.__main__ import main\nsys.exit(main())\n")
    directory = tmp_path / "device-plugins"
    with KubeletDouble(directory) as kubelet:
        plugin = Process(
            [sys.executable, str(launcher), "--nvml-mock", "t4",
             "--kubelet-socket", str(directory / "kubelet.sock"),
             "--cdi-spec-dir", str(tmp_path / "cdi")],
            environment(CONFIG_FILE=str(dst)),
        )  # fmt: skip
        sidecar = None
        try:
            kubelet.wait_registration(GPU, timeout=30)
            assert len(kubelet.endpoint(GPU).wait_list(lambda d: len(d) == 1, timeout=10)[1]) == 1

            sidecar = Process(manager, environment(
                **common, ONESHOT="false", SEND_SIGNAL="true", SIGNAL="1",
                PROCESS_TO_SIGNAL=str(launcher), CONFIG_MANAGER_HEARTBEAT_FILE=str(heartbeat),
            ))  # fmt: skip
            sidecar.wait_log("Already configured. Skipping update...")
            assert check(str(heartbeat))[0]

            # labelled: 4 replicas of the one GPU
            switched = time.monotonic()
            api.set_label(NODE, LABEL, "time-sliced")
            kubelet.wait_registration(GPU, after=switched, timeout=30)
            devices = kubelet.endpoint(GPU).wait_list(lambda d: len(d) == 4, timeout=10)[1]
            assert all("::" in device for device in devices)
            assert dst.read_text() == CONFIGS["time-sliced"]
            plugin.wait_log("Received SIGHUP, restarting.")

            # a dropped watch is resumed from the version the sidecar had, not re-listed
            lists = [r for r in api.requests if "watch" not in r["query"]]
            seen = api.version
            count = len(api.requests)
            api.drop_watches()
            api.wait_request(
                lambda r: (
                    r["query"].get("resourceVersion") == str(seen)
                    and r["query"].get("watch") == "true"
                ),
                after=count,
            )
            switched = time.monotonic()
            api.set_label(NODE, LABEL, None)  # unlabelled: the default again
            kubelet.wait_registration(GPU, after=switched, timeout=30)
            kubelet.endpoint(GPU).wait_list(lambda d: len(d) == 1, timeout=10)
            assert dst.read_text() == CONFIGS["default"]
            assert [r for r in api.requests if "watch" not in r["query"]] == lists

            # 410 Gone: the sidecar re-lists, and the change made meanwhile arrives
            count = len(api.requests)
            api.expire_watches()
            api.wait_request(lambda r: "watch" not in r["query"], after=count)
            switched = time.monotonic()
            api.set_label(NODE, LABEL, "time-sliced")
            kubelet.wait_registration(GPU, after=switched, timeout=30)
            kubelet.endpoint(GPU).wait_list(lambda d: len(d) == 4, timeout=10)
            sidecar.wait_log("Sending signal 'SIGHUP' to", count=3)
        finally:
            codes = (sidecar.stop() if sidecar else None, plugin.stop())
    assert codes == (0, 0), f"sidecar:\n{sidecar.log if sidecar else ''}\nplugin:\n{plugin.log}"
    assert plugin.log.count("Received SIGHUP, restarting.") == 3


def read_labels(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def wait_labels(path: Path, key: str, value: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while read_labels(path).get(key) != value:
        assert time.monotonic() < deadline, f"{key}={value} never came: {read_labels(path)}"
        time.sleep(0.1)


def test_label_switches_gfd_labels(api: NodeApiFake, tmp_path: Path) -> None:
    """The sidecar beside GFD: the label's config reaches GFD's labels after a SIGHUP."""
    srcdir = tmp_path / "available-configs"
    srcdir.mkdir()
    for name, text in CONFIGS.items():
        (srcdir / name).write_text(text)
    dst = tmp_path / "config.yaml"
    dst.write_text(CONFIGS["default"])  # the init container's work
    launcher = tmp_path / "bin" / "gpu-feature-discovery"
    launcher.parent.mkdir()
    launcher.write_text("import sys\nfrom gfd.__main__ import main\nsys.exit(main())\n")
    labels = tmp_path / "gfd"
    gfd = Process(
        [sys.executable, str(launcher), "--nvml-mock", "t4", "--output-file", str(labels),
         "--sleep-interval", "1h", "--no-timestamp", "--use-node-feature-api=false"],
        environment(CONFIG_FILE=str(dst)),
    )  # fmt: skip
    sidecar = None
    try:
        wait_labels(labels, "nvidia.com/gpu.count", "1")
        assert "nvidia.com/gpu.replicas" in read_labels(labels)
        sidecar = Process([sys.executable, "-m", "configmanager"], environment(
            NODE_NAME=NODE, KUBECONFIG=api.write_kubeconfig(tmp_path / "kubeconfig"),
            CONFIG_FILE_SRCDIR=str(srcdir), CONFIG_FILE_DST=str(dst),
            FALLBACK_STRATEGIES="named", PROCESS_TO_SIGNAL=str(launcher),
        ))  # fmt: skip
        sidecar.wait_log("Already configured. Skipping update...")
        api.set_label(NODE, LABEL, "time-sliced")
        wait_labels(labels, "nvidia.com/gpu.replicas", "4")
        assert read_labels(labels)["nvidia.com/gpu.sharing-strategy"] == "time-slicing"
        api.set_label(NODE, LABEL, None)
        wait_labels(labels, "nvidia.com/gpu.replicas", "1")
        gfd.wait_log("Received SIGHUP, restarting.", count=2)
    finally:
        codes = (sidecar.stop() if sidecar else None, gfd.stop())
    assert codes == (0, 0), f"sidecar:\n{sidecar.log if sidecar else ''}\ngfd:\n{gfd.log}"


def test_oneshot_fails_with_the_reason(api: NodeApiFake, tmp_path: Path) -> None:
    """The init container's error is one line naming the config, and exit 1."""
    srcdir = tmp_path / "available-configs"
    srcdir.mkdir()
    (srcdir / "a100").write_text("version: v1\n")
    api.set_label(NODE, LABEL, "h100")
    done = subprocess.run(
        [sys.executable, "-m", "configmanager", "--oneshot", "--send-signal=false",
         f"--kubeconfig={api.write_kubeconfig(tmp_path / 'kubeconfig')}",
         f"--node-name={NODE}", f"--config-file-srcdir={srcdir}",
         f"--config-file-dst={tmp_path / 'config.yaml'}"],
        env=environment(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert "Error: specified config h100 does not exist" in done.stderr
    assert not (tmp_path / "config.yaml").exists()
