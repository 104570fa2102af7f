"""The real NVML path on a machine without a GPU: production pynvml loading a C library.

`gpu-feature-discovery` runs with no `--nvml-mock`, its pynvml loading the stub
`libnvidia-ml.so.1` (tests/support/nvml_stub.c, built here with gcc) through ctypes as it
loads a driver's library. Matrix: the stub answers NVML calls, errors included, as the
simulator's dgx-a100 does; the oneshot's labels equal the simulated dgx-a100's but for
the labels read from host files that the simulator renders and the stub cannot; the
real path never imports the simulator (`python -X importtime` lists every module
imported, and the simulated run's list shows that `nvlib.sim` would be seen).

The device plugin runs on that path too, against the kubelet double: it registers,
advertises the stub's eight GPUs and answers Allocate with the default `envvar`
strategy (health checks are off: the stub has no event calls, which the plugin treats
as an older driver does). The CDI generator runs there with `--driver-root` naming the
driver files and device nodes a simulated run laid out (`--simulator-root`), since a
library stub brings no driver files: its spec is the simulated run's, byte for byte.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from kubelet_double import KubeletDouble
from nvml_stub import StubBuildError, build, stub_env, write_machine_type

GFD = Path(sys.executable).parent / "gpu-feature-discovery"
PLUGIN = Path(sys.executable).parent / "nvidia-device-plugin"
CDI = Path(sys.executable).parent / "nvidia-cdi"
ONESHOT = ("--oneshot", "--output-file", "-", "--no-timestamp")
PROFILE_BUS_IDS = (
    "0000:07:00.0", "0000:0f:00.0", "0000:47:00.0", "0000:4e:00.0",
    "0000:87:00.0", "0000:90:00.0", "0000:b7:00.0", "0000:bd:00.0",
)  # fmt: skip

# Labels read from host files, which the simulator renders in its host tree and the
# stub (a library, not a host) cannot: label -> why, and what the real path gives.
HOST_FILE_LABELS = {
    # The PCI class of each GPU, from /sys/bus/pci/devices/<bus id>/class. The simulator
    # writes 0x030200 (3D controller) for every GPU: "compute". This host has no device
    # at the profile's bus addresses, so the class is unreadable: "unknown".
    "nvidia.com/gpu.mode": "unknown",
}

# Every NVML call a GFD oneshot makes on dgx-a100, and the error answers around them, as
# "name: result" lines; run beneath the simulator (argv[1] == "sim") or the stub.
PROBE = """
import json, sys
import pynvml
from pynvml import *
out = []
def ask(fn, *args, index=None):
    try:
        value = fn(*args)
    except NVMLError as err:
        value = [type(err).__name__, str(err)]
    if isinstance(value, nvmlPciInfo_t | c_nvmlMemory_t):
        value = {f: getattr(value, f) for f, _ in value._fields_}
    out.append([fn.__name__, index, repr(value)])
def nvmlDeviceGetGpuFabricInfoV_2(handle):
    return nvmlDeviceGetGpuFabricInfoV(handle, byref(c_nvmlGpuFabricInfo_v2_t()))
def probe():
    ask(nvmlInit)
    ask(nvmlShutdown)
    ask(nvmlSystemGetDriverVersion)
    ask(nvmlInitWithFlags, 0)
    ask(nvmlSystemGetDriverVersion)
    ask(nvmlSystemGetCudaDriverVersion)
    ask(nvmlDeviceGetHandleByIndex, 8)
    for index in range(nvmlDeviceGetCount()):
        handle = nvmlDeviceGetHandleByIndex(index)
        for fn in (nvmlDeviceGetName, nvmlDeviceGetUUID, nvmlDeviceGetPciInfo,
                   nvmlDeviceGetMinorNumber, nvmlDeviceGetCudaComputeCapability,
                   nvmlDeviceGetMemoryInfo, nvmlDeviceGetMigMode,
                   nvmlDeviceGetGpuFabricInfoV_2):
            ask(fn, handle, index=index)
    for code in (1, 2, 3, 7, 999):
        ask(nvmlErrorString, code)
    ask(nvmlShutdown)
    ask(nvmlShutdown)
if sys.argv[1:] == ["sim"]:
    from nvlib import sim
    with sim.activate("dgx-a100"):
        probe()
else:
    probe()
    ask(nvmlInit)
    ask(nvmlDeviceGetBrand, nvmlDeviceGetHandleByIndex(0), index=0)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def stub(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], Path]:
    """The environment that puts the stub beneath pynvml, and a DMI product-name file."""
    directory = tmp_path_factory.mktemp("nvml-stub")
    try:
        library = build(directory)
    except StubBuildError as err:
        pytest.fail(f"the real NVML path cannot be tested without the stub: {err}")
    return stub_env(library), write_machine_type(directory)


def _require_installed(command: Path) -> None:
    if not command.exists():
        pytest.fail(f"{command} is missing: install the project (pip install .) into this venv")


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def _simulator_env(env: dict[str, str]) -> dict[str, str]:
    """The same environment without the stub on the loader's path."""
    return {k: v for k, v in env.items() if k != "LD_LIBRARY_PATH"}


def _oneshot(env: dict[str, str], *args: str) -> tuple[dict[str, str], set[str]]:
    """The oneshot's labels, and the modules it imported (-X importtime's report)."""
    _require_installed(GFD)
    result = _run([sys.executable, "-X", "importtime", str(GFD), *ONESHOT, *args], env)
    labels = dict(line.split("=", 1) for line in result.stdout.splitlines())
    return labels, _imported(result.stderr)


def _imported(stderr: str) -> set[str]:
    """The modules `python -X importtime` reported importing."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in stderr.splitlines()
        if line.startswith("import time:")
    }


def _gpu_uuids(env: dict[str, str]) -> set[str]:
    """The dgx-a100's eight GPU UUIDs, as the simulator (and so the stub) reports them."""
    calls = json.loads(_run([sys.executable, "-c", PROBE, "sim"], _simulator_env(env)).stdout)
    uuids = {value.strip("'") for name, _, value in calls if name == "nvmlDeviceGetUUID"}
    assert len(uuids) == 8
    return uuids


def _simulator_modules(modules: set[str]) -> set[str]:
    return {m for m in modules if m == "nvlib.sim" or m.startswith("nvlib.sim.")}


def test_the_stub_answers_as_the_simulated_dgx_a100(stub: tuple[dict[str, str], Path]) -> None:
    env, _ = stub
    simulated = json.loads(_run([sys.executable, "-c", PROBE, "sim"], _simulator_env(env)).stdout)
    *real, brand = json.loads(_run([sys.executable, "-c", PROBE], env).stdout)
    assert real[:-1] == simulated
    assert real[-1] == ["nvmlInit", None, "None"]
    # A symbol the stub does not export is a missing function, as on an older driver.
    missing = "['NVMLError_FunctionNotFound', 'Function Not Found']"
    assert brand == ["nvmlDeviceGetBrand", 0, missing]


def test_oneshot_on_the_real_path_labels_as_the_simulator(
    stub: tuple[dict[str, str], Path],
) -> None:
    env, machine_type = stub
    real, real_modules = _oneshot(env, "--machine-type-file", str(machine_type))
    simulated, sim_modules = _oneshot(_simulator_env(env), "--nvml-mock", "dgx-a100")

    assert real.keys() == simulated.keys()
    assert {k: v for k, v in real.items() if k not in HOST_FILE_LABELS} == {
        k: v for k, v in simulated.items() if k not in HOST_FILE_LABELS
    }
    assert simulated["nvidia.com/gpu.mode"] == "compute"
    assert not any(Path("/sys/bus/pci/devices", bus).exists() for bus in PROFILE_BUS_IDS), (
        "this host has PCI devices at the profile's GPU addresses: gpu.mode would be theirs"
    )
    assert {k: real[k] for k in HOST_FILE_LABELS} == HOST_FILE_LABELS

    assert "nvlib.sim" in sim_modules  # the check below would see the simulator
    assert not _simulator_modules(real_modules)
    assert "nvlib.mock" not in real_modules


def test_plugin_on_the_real_path_advertises_and_allocates_the_stub_gpus(
    stub: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, _ = stub
    _require_installed(PLUGIN)
    uuids = _gpu_uuids(env)
    directory = tmp_path / "device-plugins"
    with KubeletDouble(directory) as kubelet:
        plugin = subprocess.Popen(
            [sys.executable, "-X", "importtime", str(PLUGIN),
             "--kubelet-socket", str(directory / "kubelet.sock")],
            env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            endpoint = kubelet.endpoint("nvidia.com/gpu", timeout=30)
            devices = endpoint.wait_list(lambda d: len(d) == 8, timeout=10)[1]
            assert set(devices) == uuids
            assert {health for health, _ in devices.values()} == {"Healthy"}
            first = sorted(uuids)[0]
            response = endpoint.allocate([first]).container_responses[0]
            assert dict(response.envs) == {"NVIDIA_VISIBLE_DEVICES": first}
        finally:
            plugin.send_signal(signal.SIGTERM)
            _, err = plugin.communicate(timeout=20)
    assert plugin.returncode == 0, err[-3000:]
    modules = _imported(err)
    assert "deviceplugin.daemon" in modules  # the report covers the plugin's own modules
    assert not _simulator_modules(modules)


def test_cdi_spec_on_the_real_path_is_the_simulated_one(
    stub: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    env, _ = stub
    _require_installed(CDI)
    root, simulated, real = tmp_path / "root", tmp_path / "sim.yaml", tmp_path / "real.yaml"
    # The simulated run lays the driver's files and nodes out under `root` and names them
    # there (root needed: it makes character devices).
    _run([str(CDI), "generate", "--nvml-mock", "dgx-a100", "--simulator-root", str(root),
          "--output", str(simulated)], _simulator_env(env))  # fmt: skip
    result = _run(
        [sys.executable, "-X", "importtime", str(CDI), "generate", "--driver-root", str(root),
         "--output", str(real)],
        env,
    )  # fmt: skip
    assert "Using driver version 550.54.15" in result.stderr  # from the stub, through NVML
    assert real.read_bytes() == simulated.read_bytes()
    text = real.read_text()
    assert all(f"- name: {uuid}\n" in text for uuid in _gpu_uuids(env))  # the stub's GPUs
    modules = _imported(result.stderr)
    assert "cdi.run" in modules and not _simulator_modules(modules)
