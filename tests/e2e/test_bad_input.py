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


# --- gpu-feature-discovery --------------------------------------------------------------

GFD = BIN / "gpu-feature-discovery"
NODE = "node-1"
NF_NAME = f"nvidia-features-for-{NODE}"
NF_PATH = f"/apis/nfd.k8s-sigs.io/v1alpha1/namespaces/gpu/nodefeatures/{NF_NAME}"
REPLICAS = (
    "version: v1\nsharing:\n  timeSlicing:\n    resources:\n"
    "    - name: nvidia.com/gpu\n      replicas: {}\n"
)


def gfd_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GFD_", "NVML_MOCK"))}
    for name in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST", "NODE_NAME", "NAMESPACE"):
        env.pop(name, None)
    return env | extra


def labels(data: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in data.decode().splitlines())


class Daemon:
    """A command as a process, its standard error read as it comes."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env
        )
        self.log = Log(self.proc.stderr)

    def __enter__(self) -> Daemon:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self.log.close()

    def alive(self) -> bool:
        return self.proc.poll() is None


GARBAGE_CONFIGS = [
    pytest.param("version: v1\nflags: [\n", "yaml: line 3: ", "", id="yaml-syntax"),
    pytest.param(
        REPLICAS.format(-4),
        "number of replicas must be >= 2",
        ", at sharing.timeSlicing.resources[0].replicas = -4",
        id="bad-value",
    ),
    pytest.param("just words\n", "cannot use a JSON string as a mapping", "", id="not-a-mapping"),
    pytest.param(None, "no such file or directory", "", id="deleted"),
]


@pytest.mark.parametrize(("garbage", "says", "at"), GARBAGE_CONFIGS)
def test_gfd_config_turned_to_garbage_under_sighup_keeps_the_last_labels(
    tmp_path: Path, garbage: str | None, says: str, at: str
) -> None:
    """A reload that cannot load is refused, naming the file and the field: the process
    keeps its last good config and labels, its passes go on, and the next SIGHUP with a
    good file applies it. A garbage config pushed to a fleet must not take the labels of
    every node away (exit 1 would remove the feature file, then crash-loop)."""
    out = tmp_path / "gfd"
    config = tmp_path / "config.yaml"
    config.write_text(REPLICAS.format(2))
    argv = [str(GFD), "--nvml-mock", "t4", "--sleep-interval", "100ms"]
    with Daemon([*argv, "--output-file", str(out), "--config-file", str(config)], gfd_env()) as d:
        wait_for(
            lambda: out.exists() and labels(out.read_bytes())["nvidia.com/gpu.replicas"] == "2",
            "the first labels",
        )
        good = out.read_bytes()
        if garbage is None:
            config.unlink()
        else:
            config.write_text(garbage)
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: d.log.count("keeping the last good config") == 1, "the refusal")
        passes = d.log.count("Writing labels to output file")
        wait_for(lambda: d.log.count("Writing labels to output file") >= passes + 3, "more passes")
        assert d.alive()
        assert out.read_bytes() == good
        [refusal] = [line for line in d.log.lines if "keeping the last good config" in line]
        assert says in refusal and f"(in config file {config}{at})" in refusal
        config.write_text(REPLICAS.format(4))
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: labels(out.read_bytes())["nvidia.com/gpu.replicas"] == "4", "reloaded")
        assert stop(d.proc) == 0
    assert "Traceback" not in d.log.text()


@pytest.mark.parametrize(("garbage", "says", "at"), GARBAGE_CONFIGS[:3])
def test_gfd_config_garbage_at_start_exits_1_naming_it(
    tmp_path: Path, garbage: str, says: str, at: str
) -> None:
    """At start there is nothing to keep: exit 1 (a bad deployment), naming the file."""
    config = tmp_path / "config.yaml"
    config.write_text(garbage)
    result = subprocess.run(
        [str(GFD), "--nvml-mock", "t4", "--output-file", str(tmp_path / "gfd"),
         "--config-file", str(config)],
        capture_output=True, text=True, timeout=60, env=gfd_env(),
    )  # fmt: skip
    assert result.returncode == 1
    assert says in result.stderr and f"(in config file {config}{at})" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "gfd").exists()


def test_gfd_profile_turned_to_garbage_under_sighup_changes_nothing(tmp_path: Path) -> None:
    """The simulated machine is loaded once per process (a reload keeps its state and
    faults): garbage over the profile file is not read by a SIGHUP, which reloads the
    config; a restart fails naming the file and the field."""
    profile = tmp_path / "node.yaml"
    profile.write_text("gpus:\n  - model: T4\n")
    out = tmp_path / "gfd"
    config = tmp_path / "config.yaml"
    config.write_text(REPLICAS.format(2))
    argv = [str(GFD), "--nvml-mock", str(profile), "--output-file", str(out)]
    with Daemon([*argv, "--config-file", str(config), "--sleep-interval", "100ms"], gfd_env()) as d:
        wait_for(out.exists, "the first labels")
        profile.write_text("gpus:\n  - model: Z9000\n")
        config.write_text(REPLICAS.format(4))
        d.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: labels(out.read_bytes())["nvidia.com/gpu.replicas"] == "4", "reloaded")
        assert labels(out.read_bytes())["nvidia.com/gpu.product"] == "Tesla-T4-SHARED"
        assert stop(d.proc) == 0
    assert "Traceback" not in d.log.text()
    restart = subprocess.run([*argv, "--oneshot"], capture_output=True, text=True, timeout=60)
    assert restart.returncode == 1
    assert f"--nvml-mock {profile}: gpus[0].model: unknown GPU model" in restart.stderr


def api_env(kubeconfig: str) -> dict[str, str]:
    return gfd_env(NODE_NAME=NODE, NAMESPACE="gpu", KUBECONFIG=kubeconfig)


@pytest.mark.parametrize("oneshot", [True, False], ids=["oneshot", "periodic"])
def test_gfd_malformed_kubeconfig_at_start_exits_1_naming_it(tmp_path: Path, oneshot: bool) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nclusters: [\n")
    result = subprocess.run(
        [str(GFD), "--nvml-mock", "t4", "--use-node-feature-api=true",
         *(["--oneshot"] if oneshot else ["--sleep-interval", "100ms"])],
        capture_output=True, text=True, timeout=60, env=api_env(str(kubeconfig)),
    )  # fmt: skip
    assert result.returncode == 1
    assert f"kubeconfig {kubeconfig} is not valid YAML at line 3, column 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_gfd_malformed_kubeconfig_under_sighup_keeps_the_nodefeature(tmp_path: Path) -> None:
    """A reload whose kubeconfig no longer loads is refused: the NodeFeature output of
    the last good load goes on publishing (its passes still read the object)."""
    from tests.gfd.kubefake import FakeApiServer

    with FakeApiServer() as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig", "gpu")
        good_kubeconfig = Path(kubeconfig).read_text()
        argv = [str(GFD), "--nvml-mock", "t4", "--sleep-interval", "100ms"]
        with Daemon([*argv, "--use-node-feature-api=true"], api_env(kubeconfig)) as d:
            wait_for(lambda: server.fake.nodefeature("gpu", NF_NAME) is not None, "published")
            Path(kubeconfig).write_text("- not\n- a kubeconfig\n")
            d.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: d.log.count("keeping the last good config") == 1, "the refusal")
            reads = len(server.fake.calls("GET", NF_PATH))
            wait_for(lambda: len(server.fake.calls("GET", NF_PATH)) >= reads + 3, "more passes")
            assert d.alive()
            [refusal] = [line for line in d.log.lines if "keeping the last good config" in line]
            assert f"kubeconfig {kubeconfig} is not a kubeconfig" in refusal
            Path(kubeconfig).write_text(good_kubeconfig)
            d.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: d.log.count("Running with config") == 2, "reloaded")
            assert stop(d.proc) == 0
        assert "Traceback" not in d.log.text()


LOGIN_PAGE = "<html><head><title>Sign in</title></head><body>proxy</body></html>"


def test_gfd_api_answering_html_mid_run_keeps_running(tmp_path: Path) -> None:
    """An answer that is not JSON fails the publish with a line naming the request and
    the status; the process runs on, and publishes once the API answers again."""
    from tests.gfd.kubefake import FakeApiServer, RawAnswer

    with FakeApiServer() as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig", "gpu")
        argv = [str(GFD), "--nvml-mock", "t4", "--sleep-interval", "100ms", "--no-timestamp"]
        with Daemon([*argv, "--use-node-feature-api=true"], api_env(kubeconfig)) as d:
            wait_for(lambda: server.fake.nodefeature("gpu", NF_NAME) is not None, "published")
            server.fake.outage = RawAnswer(200, LOGIN_PAGE)  # type: ignore[assignment]
            says = f"GET {server.url}{NF_PATH} answered 200 (text/html; charset=utf-8)"
            wait_for(lambda: d.log.count(says) >= 3, "three failed passes")
            assert d.alive()
            server.fake.outage = RawAnswer(502, "upstream connect error", "text/plain")  # type: ignore[assignment]
            wait_for(lambda: d.log.count("Bad Gateway (502) from GET") >= 1, "a 502")
            wait_for(lambda: d.log.count("Backing off") >= 1, "backing off on the 502")
            server.fake.outage = None
            wait_for(lambda: d.log.count("Published the labels after") >= 1, "recovered", 30)
            assert stop(d.proc) == 0
        assert "Traceback" not in d.log.text()


def test_gfd_api_answering_html_at_start_exits_1_naming_it(tmp_path: Path) -> None:
    from tests.gfd.kubefake import FakeApiServer, RawAnswer

    with FakeApiServer() as server:
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig", "gpu")
        server.fake.outage = RawAnswer(200, LOGIN_PAGE)  # type: ignore[assignment]
        result = subprocess.run(
            [str(GFD), "--nvml-mock", "t4", "--use-node-feature-api=true",
             "--sleep-interval", "1s"],
            capture_output=True, text=True, timeout=60, env=api_env(kubeconfig),
        )  # fmt: skip
    assert result.returncode == 1
    assert f"GET {server.url}{NF_PATH} answered 200 (text/html; charset=utf-8)" in result.stderr
    assert "Traceback" not in result.stderr


# The backoff after a few failed attempts: at most 8 s (1, 2, 4, 8 s doubling).
BACKOFF_WAIT = 40.0


def test_gfd_feature_file_in_a_full_then_read_only_directory(tmp_path: Path) -> None:
    """Full: the write is waited out with backoff, the file keeps the last labels whole
    and no temp file is left; freed, the new labels land. Read-only: logged naming the
    file, last labels kept, tried again at each pass; writable again, they land."""
    mount = tmp_path / "features.d"
    out = mount / "gfd"
    config = tmp_path / "config.yaml"
    config.write_text(REPLICAS.format(2))
    argv = [str(GFD), "--nvml-mock", "t4", "--sleep-interval", "100ms", "--no-timestamp"]
    with TightFs(mount, [*argv, "--output-file", str(out), "--config-file", str(config)],
                 env=gfd_env()) as fs:  # fmt: skip
        log = Log(fs.proc.stderr)
        wait_for(lambda: fs.mounted() and fs.path("gfd").exists(), "the first labels")
        good = fs.path("gfd").read_bytes()
        fs.fill()
        config.write_text(REPLICAS.format(4))
        fs.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: log.count(f"{ENOSPC}: '{out}'") >= 2, "two failed writes")
        assert fs.proc.poll() is None, log.text()
        assert log.count("Backing off") >= 1
        assert fs.path("gfd").read_bytes() == good
        assert fs.names() == [FILLER, "gfd"]
        fs.free()
        wait_for(lambda: labels(fs.path("gfd").read_bytes())["nvidia.com/gpu.replicas"] == "4",
                 "written once freed", BACKOFF_WAIT)  # fmt: skip
        written = fs.path("gfd").read_bytes()
        fs.remount("ro")
        config.write_text(REPLICAS.format(8))
        fs.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: log.count(f"{EROFS}: '{out}'") >= 3, "three failed passes")
        assert fs.proc.poll() is None, log.text()
        assert fs.path("gfd").read_bytes() == written
        assert fs.names() == ["gfd"]
        fs.remount("rw")
        wait_for(lambda: labels(fs.path("gfd").read_bytes())["nvidia.com/gpu.replicas"] == "8",
                 "written once writable")  # fmt: skip
        assert stop(fs.proc) == 0
    assert "Traceback" not in log.text()


def test_gfd_feature_file_in_a_full_directory_at_start(tmp_path: Path) -> None:
    """A full directory is the surroundings, not the deployment: the first pass waits it
    out instead of exiting 1 (whose clean-up would remove the last labels)."""
    mount = tmp_path / "features.d"
    out = mount / "gfd"
    old = b"nvidia.com/gpu.product=Tesla-T4\n"
    argv = [str(GFD), "--nvml-mock", "t4", "--sleep-interval", "100ms", "--no-timestamp"]
    with TightFs(mount, [*argv, "--output-file", str(out)], seed={"gfd": old}, prefill=True,
                 env=gfd_env()) as fs:  # fmt: skip
        log = Log(fs.proc.stderr)
        wait_for(lambda: log.count(f"{ENOSPC}: '{out}'") >= 2, "two failed writes")
        assert fs.proc.poll() is None, log.text()
        assert fs.path("gfd").read_bytes() == old
        assert fs.names() == [FILLER, "gfd"]
        fs.free()
        wait_for(
            lambda: "nvidia.com/gpu.count" in labels(fs.path("gfd").read_bytes()),
            "written once freed",
            BACKOFF_WAIT,
        )
        assert stop(fs.proc) == 0
    assert "Traceback" not in log.text()


# --- nvidia-device-plugin ---------------------------------------------------------------

PLUGIN = BIN / "nvidia-device-plugin"
GPU = "nvidia.com/gpu"
OWN_SPEC = "nvidia-device-plugin.yaml"


def plugin_argv(directory: Path, *args: str, profile: str = "t4") -> list[str]:
    return [
        str(PLUGIN), "--nvml-mock", profile,
        "--kubelet-socket", str(directory / "kubelet.sock"), *args,
    ]  # fmt: skip


def plugin_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NVML_MOCK")}
    for name in ("CONFIG_FILE", "KUBELET_SOCKET", "CDI_SPEC_DIR", "DEVICE_LIST_STRATEGY"):
        env.pop(name, None)
    return env


def sharing(replicas: int) -> str:
    resources = f"[{{name: gpu, replicas: {replicas}}}]"
    return f"version: v1\nsharing: {{timeSlicing: {{resources: {resources}}}}}\n"


GARBAGE_PLUGIN_CONFIGS = [
    pytest.param("version: v1\nflags: [\n", "yaml: line 3: ", "", id="yaml-syntax"),
    pytest.param(
        sharing(-4),
        "number of replicas must be >= 2",
        ", at sharing.timeSlicing.resources[0].replicas = -4",
        id="bad-value",
    ),
    pytest.param(
        "version: v1\nflags: {plugin: {deviceListStrategy: [bogus]}}\n",
        "invalid --device-list-strategy option: invalid strategy: bogus",
        None,  # a flag's value: its name is the field
        id="bad-strategy",
    ),
]


@pytest.mark.parametrize(("garbage", "says", "at"), GARBAGE_PLUGIN_CONFIGS)
def test_plugin_config_turned_to_garbage_under_sighup_keeps_serving(
    tmp_path: Path, garbage: str, says: str, at: str | None
) -> None:
    """The refused reload leaves the running servers alone (same socket, the kubelet's
    stream open, Allocate answering); a kubelet restart meanwhile re-registers them with
    the last good config; a good file at the next SIGHUP applies. A garbage config
    pushed to a fleet must not crash-loop it and take every GPU from the kubelets."""
    from kubelet_double import KubeletDouble

    directory = tmp_path / "dp"
    config = tmp_path / "config.yaml"
    config.write_text(sharing(2))
    with KubeletDouble(directory) as kubelet:
        argv = plugin_argv(directory, "--config-file", str(config))
        with Daemon(argv, plugin_env()) as d:
            endpoint = kubelet.endpoint(GPU, timeout=20)
            devices = endpoint.wait_list(lambda devs: len(devs) == 2)[1]
            socket = (directory / "nvidia-gpu.sock").stat().st_ino
            config.write_text(garbage)
            d.proc.send_signal(signal.SIGHUP)
            wait_for(lambda: d.log.count("keeping the running plugins") == 1, "the refusal")
            [refusal] = [line for line in d.log.lines if "keeping the running plugins" in line]
            assert says in refusal
            if at is not None:
                assert f"(in config file {config}{at})" in refusal
            assert (directory / "nvidia-gpu.sock").stat().st_ino == socket
            assert not endpoint.ended
            assert endpoint.allocate([next(iter(devices))]).container_responses
            restarted = kubelet.restart()
            kubelet.wait_registration(GPU, after=restarted, timeout=5)
            again = kubelet.endpoint(GPU)
            assert again.wait_list(lambda devs: len(devs) == 2)[1] == devices
            assert d.alive()
            config.write_text(sharing(4))
            sent = time.monotonic()
            d.proc.send_signal(signal.SIGHUP)
            kubelet.wait_registration(GPU, after=sent, timeout=10)
            kubelet.endpoint(GPU).wait_list(lambda devs: len(devs) == 4)
            assert stop(d.proc) == 0
    assert "Traceback" not in d.log.text()


def test_plugin_config_garbage_at_start_exits_1_naming_it(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(sharing(-4))
    result = subprocess.run(
        [*plugin_argv(tmp_path / "dp"), "--config-file", str(config)],
        capture_output=True, text=True, timeout=60, env=plugin_env(),
    )  # fmt: skip
    assert result.returncode == 1
    assert "number of replicas must be >= 2" in result.stderr
    assert f"(in config file {config}, at sharing.timeSlicing" in result.stderr
    assert "Traceback" not in result.stderr


def test_plugin_profile_turned_to_garbage_under_sighup_keeps_serving(tmp_path: Path) -> None:
    """The simulated machine is loaded once per process: a SIGHUP restarts the servers
    on it (they register again), garbage over its file is not read; a restart fails
    with exit 1 naming the file and the field, without a traceback."""
    from kubelet_double import KubeletDouble

    profile = tmp_path / "node.yaml"
    profile.write_text("gpus:\n  - model: T4\n")
    directory = tmp_path / "dp"
    with KubeletDouble(directory) as kubelet:
        with Daemon(plugin_argv(directory, profile=str(profile)), plugin_env()) as d:
            devices = kubelet.endpoint(GPU, timeout=20).wait_list()[1]
            profile.write_text("gpus:\n  - model: Z9000\n")
            sent = time.monotonic()
            d.proc.send_signal(signal.SIGHUP)
            kubelet.wait_registration(GPU, after=sent, timeout=10)
            assert kubelet.endpoint(GPU).wait_list()[1] == devices
            assert stop(d.proc) == 0
        assert "Traceback" not in d.log.text()
        result = subprocess.run(
            plugin_argv(directory, profile=str(profile)),
            capture_output=True, text=True, timeout=60, env=plugin_env(),
        )  # fmt: skip
    assert result.returncode == 1
    assert f"--nvml-mock {profile}: gpus[0].model: unknown GPU model" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("kind", ["regular-file", "directory"])
def test_plugin_kubelet_socket_that_is_not_a_socket(tmp_path: Path, kind: str) -> None:
    """The error names the path and what it is, at once (not a 5 s dial that ends in
    'Deadline Exceeded'), with no traceback; the plugin keeps serving and retrying, and
    registers as soon as a kubelet makes its socket there."""
    from kubelet_double import KubeletDouble

    directory = tmp_path / "dp"
    directory.mkdir()
    path = directory / "kubelet.sock"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_text("")
    what = "a directory" if kind == "directory" else "a regular file"
    with Daemon(plugin_argv(directory), plugin_env()) as d:
        says = f"kubelet socket {path} is {what}, not a socket"
        wait_for(lambda: d.log.count(says) >= 1, "the error")
        [error] = [line for line in d.log.lines if says in line]
        assert "unable to register device plugin for 'nvidia.com/gpu'" in error
        assert "Retrying in 30s" in d.log.text()
        assert d.alive()
        if kind == "directory":
            path.rmdir()
        else:
            path.unlink()
        kubelet = KubeletDouble(directory).start()
        try:
            kubelet.wait_registration(GPU, timeout=5)
        finally:
            assert stop(d.proc) == 0
            kubelet.stop()
    assert "Traceback" not in d.log.text()
    assert "Deadline Exceeded" not in d.log.text()


def test_plugin_own_spec_in_a_full_then_read_only_directory(tmp_path: Path) -> None:
    """The plugin's own CDI spec: a write that fails names the file and the errno, the
    last file keeps its bytes, no temp file is left, the servers go on answering
    Allocate, and the write is tried again (every second) until the directory takes
    it."""
    from kubelet_double import KubeletDouble

    directory = tmp_path / "dp"
    mount = tmp_path / "cdi"
    own = mount / OWN_SPEC
    config = tmp_path / "config.yaml"

    def ids(strategy: str) -> None:
        config.write_text(f"version: v1\nflags: {{plugin: {{deviceIDStrategy: {strategy}}}}}\n")

    def defines(fs: TightFs, name: str) -> bool:
        spec = yaml.safe_load(fs.path(OWN_SPEC).read_bytes())
        return [d["name"] for d in spec["devices"]] == [name]

    ids("uuid")
    args = ("--device-list-strategy", "cdi-cri", "--cdi-spec-dir", str(mount))
    with (
        KubeletDouble(directory) as kubelet,
        TightFs(
            mount, [*plugin_argv(directory, *args), "--config-file", str(config)], env=plugin_env()
        ) as fs,
    ):
        log = Log(fs.proc.stderr)
        (uuid,) = kubelet.endpoint(GPU, timeout=20).wait_list()[1]
        wait_for(lambda: fs.path(OWN_SPEC).exists() and defines(fs, uuid), "the first spec")
        first = fs.path(OWN_SPEC).read_bytes()
        fs.fill()
        ids("index")
        sent = time.monotonic()
        fs.proc.send_signal(signal.SIGHUP)
        kubelet.wait_registration(GPU, after=sent, timeout=10)
        wait_for(lambda: log.count(f"{ENOSPC}: '{own}'") >= 1, "the failed write")
        answer = kubelet.endpoint(GPU).allocate([next(iter(kubelet.endpoint(GPU).devices))])
        assert [d.name for d in answer.container_responses[0].cdi_devices] == [f"{GPU}=0"]
        assert fs.proc.poll() is None, log.text()
        assert fs.path(OWN_SPEC).read_bytes() == first
        assert fs.names() == [FILLER, OWN_SPEC]
        fs.free()
        wait_for(lambda: defines(fs, "0"), "written once freed", 10)
        assert fs.names() == [OWN_SPEC]
        written = fs.path(OWN_SPEC).read_bytes()
        fs.remount("ro")
        ids("uuid")
        fs.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: log.count(f"{EROFS}: '{own}'") >= 1, "the failed write")
        assert fs.proc.poll() is None, log.text()
        assert fs.path(OWN_SPEC).read_bytes() == written
        fs.remount("rw")
        wait_for(lambda: defines(fs, uuid), "written once writable", 10)
        assert stop(fs.proc) == 0
    assert "Traceback" not in log.text()


def test_plugin_config_that_loads_but_cannot_start_falls_back(tmp_path: Path) -> None:
    """A config the flag checks pass but the start refuses (`single` on a node with two
    MIG profiles): the plugins start again with the last good config, and the process
    runs on, where it used to exit 1."""
    from kubelet_double import KubeletDouble

    directory = tmp_path / "dp"
    config = tmp_path / "config.yaml"
    config.write_text("version: v1\nflags: {migStrategy: mixed}\n")
    argv = plugin_argv(directory, "--config-file", str(config), profile="dgx-a100-mig")
    with KubeletDouble(directory) as kubelet, Daemon(argv, plugin_env()) as d:
        resource = "nvidia.com/mig-1g.5gb"
        devices = kubelet.endpoint(resource, timeout=20).wait_list()[1]
        config.write_text("version: v1\nflags: {migStrategy: single}\n")
        sent = time.monotonic()
        d.proc.send_signal(signal.SIGHUP)
        kubelet.wait_registration(resource, after=sent, timeout=10)
        assert kubelet.endpoint(resource).wait_list()[1] == devices
        assert d.alive()
        text = d.log.text()
        assert "more than one MIG device type present on node" in text
        assert "The new config cannot start the plugins; starting the last good one" in text
        assert stop(d.proc) == 0
    assert "Traceback" not in d.log.text()
