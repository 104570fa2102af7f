"""The real-GPU check: labels, CDI spec and plugin Allocate over one NVML, against nvidia-smi.

Run from the repository root in a venv where the project is installed:

    python tools/device_check.py [--out DIR]                 # real NVML, nvidia-smi
    python tools/device_check.py --nvml-mock dgx-a100-mig     # the simulator (what CI runs)

It runs the three installed commands as an operator would and checks each against a
reference read independently: `nvidia-smi` on a real machine, raw pynvml calls under the
same simulated profile with `--nvml-mock`.

- gpu-feature-discovery --oneshot: gpu.count, gpu.product, gpu.memory and the driver
  version labels against the reference GPUs;
- nvidia-cdi generate, then nvidia-cdi validate: a device per GPU (index and UUID) for
  each GPU whose MIG mode is off, each with its /dev/nvidia<minor>;
- nvidia-device-plugin with the cdi-cri strategy, driven by the kubelet double
  (tests/support/kubelet_double.py, the real v1beta1 API on a unix socket): it
  registers nvidia.com/gpu, lists every GPU, and Allocate answers with a CDI name the
  generated spec defines.

One line per check; `report.json` in `--out` (default: a temp dir) holds the outputs.
Exit 0 when every check holds, 1 otherwise.

On a lent GPU machine nothing can be downloaded: carry a venv made here with the
runtime dependencies only (`pip install --no-deps nvidia-ml-py pyyaml schedule grpcio
protobuf` plus `pip install --no-deps .`; GFD writes the feature file, so the Kubernetes
client is not needed).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GPU = "nvidia.com/gpu"


@dataclass(frozen=True)
class RefGpu:
    """One GPU as the reference (nvidia-smi or raw pynvml) reports it."""

    index: int
    uuid: str
    name: str
    memory_mib: int
    minor: int
    mig_enabled: bool


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def _command(name: str) -> list[str]:
    script = BIN / name
    module = {"gpu-feature-discovery": "gfd", "nvidia-cdi": "cdi"}.get(name, "deviceplugin")
    return [str(script)] if script.exists() else [sys.executable, "-m", module]


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)


def reference_from_smi() -> tuple[str, list[RefGpu]]:
    """(driver version, GPUs) as nvidia-smi reports them."""
    fields = "index,uuid,name,memory.total,driver_version,mig.mode.current,pci.bus_id"
    out = _run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"])
    if out.returncode != 0:
        raise SystemExit(f"nvidia-smi failed: {out.stderr.strip()}")
    gpus, driver = [], ""
    for line in out.stdout.strip().splitlines():
        index, uuid, name, memory, driver, mig, bus_id = (f.strip() for f in line.split(","))
        gpus.append(
            RefGpu(
                int(index), uuid, name, int(memory), _minor(bus_id, int(index)), mig == "Enabled"
            )
        )
    return driver, gpus


def _minor(bus_id: str, index: int) -> int:
    """The device minor from the driver's per-GPU information file (index if unreadable)."""
    domain_bus = bus_id.lower()
    if domain_bus.startswith("0000") and len(domain_bus.split(":")[0]) == 8:
        domain_bus = domain_bus[4:]
    info = Path("/proc/driver/nvidia/gpus") / domain_bus / "information"
    try:
        for line in info.read_text().splitlines():
            if line.startswith("Device Minor:"):
                return int(line.split(":", 1)[1])
    except OSError:
        pass
    return index


def reference_from_pynvml(profile: str) -> tuple[str, list[RefGpu]]:
    """(driver version, GPUs) from raw pynvml calls under the simulated `profile`."""
    import pynvml

    from nvlib import sim

    with sim.activate(profile):
        pynvml.nvmlInit()
        try:
            driver = pynvml.nvmlSystemGetDriverVersion()
            gpus = []
            for i in range(pynvml.nvmlDeviceGetCount()):
                h = pynvml.nvmlDeviceGetHandleByIndex(i)
                try:
                    mig = pynvml.nvmlDeviceGetMigMode(h)[0] == pynvml.NVML_DEVICE_MIG_ENABLE
                except pynvml.NVMLError_NotSupported:
                    mig = False
                gpus.append(
                    RefGpu(
                        i,
                        pynvml.nvmlDeviceGetUUID(h),
                        pynvml.nvmlDeviceGetName(h),
                        pynvml.nvmlDeviceGetMemoryInfo(h).total // (1024 * 1024),
                        pynvml.nvmlDeviceGetMinorNumber(h),
                        mig,
                    )
                )
        finally:
            pynvml.nvmlShutdown()
    return driver, gpus


def check_labels(mock: list[str], driver: str, gpus: list[RefGpu], report: dict) -> list[Check]:
    out = _run(
        [
            *_command("gpu-feature-discovery"),
            "--oneshot",
            "--output-file",
            "-",
            "--use-node-feature-api=false",
            *mock,
        ]
    )
    report["labels"] = {"rc": out.returncode, "stdout": out.stdout, "stderr": out.stderr[-4000:]}
    if out.returncode != 0:
        return [Check("gfd oneshot", False, out.stderr.strip()[-300:])]
    labels = dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)
    products = {g.name.replace(" ", "-") for g in gpus}
    product = labels.get(f"{GPU}.product", "")
    memories = {str(g.memory_mib) for g in gpus}
    whole = [g for g in gpus if not g.mig_enabled] or gpus
    # On a node of several models the labels describe one (docs/labels.md#the-gpus): count those.
    of_product = [g for g in gpus if product.startswith(g.name.replace(" ", "-"))]
    return [
        Check(
            "gfd gpu.count",
            labels.get(f"{GPU}.count") == str(len(of_product)),
            f"label {labels.get(f'{GPU}.count')} vs {len(of_product)} GPUs named so",
        ),
        Check(
            "gfd gpu.product",
            any(product.startswith(p) for p in products),
            f"label {product!r} vs {sorted(products)}",
        ),
        Check(
            "gfd gpu.memory",
            labels.get(f"{GPU}.memory") in memories or not whole,
            f"label {labels.get(f'{GPU}.memory')} vs {sorted(memories)} MiB",
        ),
        Check(
            "gfd driver version",
            labels.get("nvidia.com/cuda.driver-version.full") == driver,
            f"label {labels.get('nvidia.com/cuda.driver-version.full')} vs {driver}",
        ),
    ]


def check_cdi(mock: list[str], gpus: list[RefGpu], spec_dir: Path, report: dict) -> list[Check]:
    spec_path = spec_dir / "nvidia.yaml"
    out = _run([*_command("nvidia-cdi"), "generate", "--output", str(spec_path), *mock])
    report["cdi"] = {"rc": out.returncode, "stderr": out.stderr[-4000:]}
    if out.returncode != 0:
        return [Check("cdi generate", False, out.stderr.strip()[-300:])]
    report["cdi"]["spec"] = spec_path.read_text()
    validated = _run([*_command("nvidia-cdi"), "validate", str(spec_path)])
    spec = yaml.safe_load(spec_path.read_text())
    devices = {d["name"]: d["containerEdits"] for d in spec["devices"]}
    checks = [
        Check(
            "cdi validate",
            validated.returncode == 0,
            (validated.stdout + validated.stderr).strip()[-300:] or "no problems",
        )
    ]
    for gpu in (g for g in gpus if not g.mig_enabled):
        edits = devices.get(gpu.uuid)
        paths = [n["path"] for n in (edits or {}).get("deviceNodes", [])]
        checks.append(
            Check(
                f"cdi device {gpu.index}",
                str(gpu.index) in devices and f"/dev/nvidia{gpu.minor}" in paths,
                f"names {gpu.index}/{gpu.uuid[:12]}..., nodes {paths}",
            )
        )
    return checks


def _wait(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def check_plugin(
    mock: list[str], gpus: list[RefGpu], spec_dir: Path, work: Path, report: dict
) -> list[Check]:
    sys.path.insert(0, str(ROOT / "tests" / "support"))
    from kubelet_double import KubeletDouble

    kubelet_dir = work / "device-plugins"
    kubelet_dir.mkdir()
    argv = [
        *_command("nvidia-device-plugin"),
        "--kubelet-socket",
        str(kubelet_dir / "kubelet.sock"),
        "--device-list-strategy",
        "cdi-cri",
        "--cdi-spec-dir",
        str(spec_dir),
        *mock,
    ]
    log = (work / "plugin.log").open("w")
    with KubeletDouble(kubelet_dir).start() as kubelet:
        plugin = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            endpoint = kubelet.endpoint(GPU, timeout=30)
            _, listed = endpoint.wait_list(lambda d: len(d) > 0, timeout=30)
            first = sorted(listed)[0]
            answer = endpoint.allocate([first]).container_responses[0]
            names = [d.name for d in answer.cdi_devices]
        finally:
            plugin.terminate()
            plugin.wait(10)
            log.close()
    report["plugin"] = {
        "listed": sorted(listed),
        "allocate": names,
        "log": (work / "plugin.log").read_text()[-4000:],
    }
    defined = {
        f"{GPU}={d['name']}"
        for f in spec_dir.glob("*.yaml")
        for d in (yaml.safe_load(f.read_text()) or {}).get("devices", [])
    }
    expected = {g.uuid for g in gpus}
    return [
        Check(
            "plugin ListAndWatch",
            set(listed) == expected,
            f"{len(listed)} devices listed, {len(expected)} GPUs",
        ),
        Check(
            "plugin Allocate",
            names == [f"{GPU}={first}"] and names[0] in defined,
            f"{first[:16]}... -> {names}",
        ),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nvml-mock", help="a built-in profile: check the simulator instead")
    parser.add_argument("--out", help="where report.json goes (default: a temp dir)")
    args = parser.parse_args()
    mock = ["--nvml-mock", args.nvml_mock] if args.nvml_mock else []
    if args.nvml_mock:
        driver, gpus = reference_from_pynvml(args.nvml_mock)
    else:
        driver, gpus = reference_from_smi()
    work = Path(tempfile.mkdtemp(prefix="device-check-"))
    out = Path(args.out) if args.out else work
    out.mkdir(parents=True, exist_ok=True)
    spec_dir = work / "cdi"
    spec_dir.mkdir()
    report: dict = {"driver": driver, "gpus": [asdict(g) for g in gpus]}
    try:
        checks = check_labels(mock, driver, gpus, report)
        checks += check_cdi(mock, gpus, spec_dir, report)
        checks += check_plugin(mock, gpus, spec_dir, work, report)
    finally:
        report_path = out / "report.json"
        report["checks"] = [asdict(c) for c in locals().get("checks", [])]
        report_path.write_text(json.dumps(report, indent=2))
        if not args.out:
            print(f"report: {report_path}", file=sys.stderr)
        elif work != out:
            shutil.rmtree(work, ignore_errors=True)
    print(f"driver {driver}; {len(gpus)} GPU(s): " + ", ".join(sorted({g.name for g in gpus})))
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name:<24} {check.detail}")
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
