"""The host tree a profile implies: sysfs PCI devices, DMI, procfs MIG minors, driver root.

Tools read these through a `root` instead of `/`, so in simulation they find the same
files they would on the machine. A HostTree writes them in two parts: at activation
the small part every command reads (sysfs, DMI, procfs: about 110 files for
dgx-a100), and the driver root (placeholder device nodes, about 60 libraries and
their links, firmware, binaries, config files) only when a command asks for it.
Placeholder device nodes are empty regular files; `device_nodes` gives the
(major, minor) each stands for, keyed by its path relative to the driver root.

Every entry is written with plain os calls and remembered, so that removing an owned
tree unlinks what was written instead of walking it: a command start pays for each
system call, and both halves cost tens of microseconds per file.
"""

from __future__ import annotations

import os
import shutil
import struct

from nvlib.sim.profile import GpuSpec, PciAddress, Profile, VGpuSpec

PCI_DEVICES = "sys/bus/pci/devices"
DRIVER_ROOT = "driver"
LIB_DIR = "usr/lib/x86_64-linux-gnu"
NVIDIA_VENDOR = 0x10DE
_HOST_BRIDGE = PciAddress(0, 0, 0, 0)

# mig-minors numbering of the real driver: config 1, monitor 2, then per GPU minor 15
# GPU instances of 1 + 8 entries (the GI's access, then its 8 CIs').
_GIS_PER_GPU, _CIS_PER_GI = 15, 8
_PER_GI = 1 + _CIS_PER_GI
_PER_GPU = _GIS_PER_GPU * _PER_GI
# One GPU's mig-minors lines, GI access then its CIs' for each GI: `#` is the GPU's
# minor, and the capability minors, in line order, count up from the GPU's first.
_MIG_MINORS_GPU = "".join(
    f"gpu#/gi{gi}/access %d\n"
    + "".join(f"gpu#/gi{gi}/ci{ci}/access %d\n" for ci in range(_CIS_PER_GI))
    for gi in range(_GIS_PER_GPU)
)

# Driver libraries: (stem, SONAME suffix or None when the file is its own SONAME,
# whether a development `.so` link is installed too).
_LIBRARIES: tuple[tuple[str, str | None, bool], ...] = (
    ("libcuda.so", "1", True),
    ("libcudadebugger.so", "1", False),
    ("libnvidia-ml.so", "1", True),
    ("libnvidia-ptxjitcompiler.so", "1", True),
    ("libnvidia-nvvm.so", "4", True),
    ("libnvidia-opencl.so", "1", False),
    ("libnvidia-cfg.so", "1", True),
    ("libnvidia-allocator.so", "1", True),
    ("libnvidia-encode.so", "1", True),
    ("libnvcuvid.so", "1", True),
    ("libnvidia-opticalflow.so", "1", True),
    ("libnvidia-fbc.so", "1", True),
    ("libnvidia-ngx.so", "1", False),
    ("libnvoptix.so", "1", False),
    ("libGLX_nvidia.so", "0", False),
    ("libEGL_nvidia.so", "0", False),
    ("libGLESv2_nvidia.so", "2", False),
    ("libGLESv1_CM_nvidia.so", "1", False),
    ("libnvidia-glcore.so", None, False),
    ("libnvidia-eglcore.so", None, False),
    ("libnvidia-glsi.so", None, False),
    ("libnvidia-tls.so", None, False),
    ("libnvidia-glvkspirv.so", None, False),
    ("libnvidia-rtcore.so", None, False),
    ("libnvidia-gpucomp.so", None, False),
    ("libnvidia-pkcs11.so", None, False),
    ("libnvidia-pkcs11-openssl3.so", None, False),
    ("libnvidia-wayland-client.so", None, False),
    ("libnvidia-vulkan-producer.so", None, False),
)
_BINARIES = (
    "nvidia-smi",
    "nvidia-debugdump",
    "nvidia-persistenced",
    "nvidia-cuda-mps-control",
    "nvidia-cuda-mps-server",
)
_FIRMWARE = ("gsp_ga10x.bin", "gsp_tu10x.bin")


class _Plan:
    """Entries to write: files (relative path, data, mode) and symlinks."""

    def __init__(self) -> None:
        self.files: list[tuple[str, bytes, int]] = []
        self.links: list[tuple[str, str]] = []

    def file(self, path: str, data: bytes | str = b"", mode: int = 0o644) -> None:
        self.files.append((path, data.encode() if isinstance(data, str) else data, mode))

    def link(self, path: str, target: str) -> None:
        self.links.append((path, target))


class HostTree:
    """The host tree of one simulation under `root`: written in parts, removed at once."""

    def __init__(self, root: str, profile: Profile) -> None:
        self.root = root
        self.profile = profile
        self._dirs: set[str] = {""}  # relative directories known to exist
        self._made: list[str] = []  # directories created, absolute
        self._entries: list[str] = []  # files and links written, absolute

    def write_base(self) -> None:
        """sysfs, DMI and procfs: what every command reads."""
        plan = _Plan()
        _sysfs(plan, self.profile)
        if self.profile.machine is not None:
            plan.file("sys/class/dmi/id/product_name", self.profile.machine + "\n")
        _procfs(plan, self.profile)
        self._write(plan)

    def write_driver(self) -> dict[str, tuple[int, int]]:
        """The driver root: placeholder device nodes, libraries, binaries, config files.

        Returns `device_nodes(profile)`, the nodes it wrote.
        """
        plan = _Plan()
        nodes = device_nodes(self.profile)
        for path in nodes:
            plan.file(f"{DRIVER_ROOT}/{path}", mode=placeholder_mode(path))
        files, links = driver_files(self.profile)
        plan.files += [(f"{DRIVER_ROOT}/{path}", data, mode) for path, data, mode in files]
        plan.links += [(f"{DRIVER_ROOT}/{path}", target) for path, target in links]
        self._write(plan)
        return nodes

    def _write(self, plan: _Plan) -> None:
        root, known = self.root, self._dirs
        wanted: set[str] = set()
        for path in [p for p, _, _ in plan.files] + [p for p, _ in plan.links]:
            parent = path.rpartition("/")[0]
            while parent not in known and parent not in wanted:
                wanted.add(parent)
                parent = parent.rpartition("/")[0]
        for d in sorted(wanted):  # a parent sorts before its children
            full = f"{root}/{d}"
            try:
                os.mkdir(full)
                self._made.append(full)
            except FileExistsError:  # a root the caller gave, written before
                pass
            known.add(d)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        entries = self._entries
        for path, data, mode in plan.files:
            full = f"{root}/{path}"
            fd = os.open(full, flags, mode)
            try:
                if data:
                    os.write(fd, data)
                if mode & 0o022:  # the umask would have taken world/group write from a node
                    os.fchmod(fd, mode)
            finally:
                os.close(fd)
            entries.append(full)
        for path, target in plan.links:
            full = f"{root}/{path}"
            try:
                os.symlink(target, full)
            except FileExistsError:
                os.unlink(full)
                os.symlink(target, full)
            entries.append(full)

    def remove(self) -> None:
        """Remove the whole tree, root included: what was written, then anything else."""
        try:
            for path in self._entries:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
            for d in reversed(self._made):  # children were made after their parents
                os.rmdir(d)
            os.rmdir(self.root)
        except OSError:  # something added or changed in the tree: walk it
            shutil.rmtree(self.root, ignore_errors=True)


def _sysfs(plan: _Plan, profile: Profile) -> None:
    configs: dict[tuple[object, ...], bytes] = {}  # GPUs of one model share a header
    taken = {g.bus for g in profile.gpus} | {s.bus for s in profile.nvswitches}
    if _HOST_BRIDGE not in taken:  # something not NVIDIA, for readers that filter by vendor
        _pci_device(plan, configs, _HOST_BRIDGE, 0x8086, 0x09A2, 0x060000, 0x8086, 0, 0, None)
    for gpu in profile.gpus:
        _pci_device(
            plan,
            configs,
            gpu.bus,
            NVIDIA_VENDOR,
            gpu.pci_device_id >> 16,
            gpu.pci_class,
            gpu.pci_subsystem_id & 0xFFFF,
            gpu.pci_subsystem_id >> 16,
            gpu.numa_node,
            gpu.vgpu,
        )
    for switch in profile.nvswitches:
        _pci_device(
            plan,
            configs,
            switch.bus,
            NVIDIA_VENDOR,
            switch.device_id,
            0x068000,
            NVIDIA_VENDOR,
            0x0000,
            switch.numa_node,
            None,
        )


def _pci_device(
    plan: _Plan,
    configs: dict[tuple[object, ...], bytes],
    bus: PciAddress,
    vendor: int,
    device: int,
    pci_class: int,
    subsystem_vendor: int,
    subsystem_device: int,
    numa_node: int | None,
    vgpu: VGpuSpec | None,
) -> None:
    base = f"{PCI_DEVICES}/{bus.sysfs}"
    key = (vendor, device, pci_class, subsystem_vendor, subsystem_device, vgpu)
    config = configs.get(key)
    if config is None:
        config = configs[key] = pci_config(*key)
    plan.files += (
        (f"{base}/vendor", b"0x%04x\n" % vendor, 0o644),
        (f"{base}/device", b"0x%04x\n" % device, 0o644),
        (f"{base}/subsystem_vendor", b"0x%04x\n" % subsystem_vendor, 0o644),
        (f"{base}/subsystem_device", b"0x%04x\n" % subsystem_device, 0o644),
        (f"{base}/class", b"0x%06x\n" % pci_class, 0o644),
        (f"{base}/numa_node", b"%d\n" % (-1 if numa_node is None else numa_node), 0o644),
        (f"{base}/config", config, 0o644),
    )


def pci_config(
    vendor: int,
    device: int,
    pci_class: int,
    subsystem_vendor: int,
    subsystem_device: int,
    vgpu: VGpuSpec | None = None,
) -> bytes:
    """A 256-byte type-0 configuration header with a capability list.

    The list is power management, MSI and PCI Express; a vGPU guest's GPU adds the
    vendor-specific capability (id 0x09) that docs/labels.md#vgpu walks: signature `VF` at
    bytes 3-4, then from byte 5 a host-driver record (id 0, length 22) holding the
    10-byte version and the 10-byte branch, NUL padded: 27 bytes in all.
    """
    config = bytearray(256)
    struct.pack_into("<HHHH", config, 0, vendor, device, 0x0006, 0x0010)  # status: cap list
    config[0x08] = 0xA1  # revision
    config[0x09:0x0C] = pci_class.to_bytes(3, "little")
    struct.pack_into("<II", config, 0x10, 0xFA000000, 0x0000000C)  # BAR0, BAR1 (64-bit pref.)
    struct.pack_into("<HH", config, 0x2C, subsystem_vendor, subsystem_device)
    config[0x34] = 0x60
    config[0x3C:0x3E] = b"\xff\x01"  # interrupt line, pin A
    config[0x60:0x64] = bytes((0x01, 0x68, 0x03, 0x00))  # power management
    config[0x68:0x6C] = bytes((0x05, 0x78, 0x80, 0x01))  # MSI, 64-bit
    vendor_cap = 0xB4
    config[0x78:0x7C] = bytes((0x10, vendor_cap if vgpu else 0x00, 0x02, 0x00))  # PCIe v2
    if vgpu is not None:
        record = (
            bytes((0x00, 22))
            + vgpu.host_driver_version.encode().ljust(10, b"\0")
            + vgpu.host_driver_branch.encode().ljust(10, b"\0")
        )
        capability = bytes((0x09, 0x00, 5 + len(record))) + b"VF" + record
        config[vendor_cap : vendor_cap + len(capability)] = capability
    return bytes(config)


def mig_minor(gpu_minor: int, gi: int, ci: int | None = None) -> int:
    """The nvidia-caps minor of a GI's or CI's access file, as the driver numbers them."""
    base = 3 + gpu_minor * _PER_GPU + gi * _PER_GI
    return base if ci is None else base + 1 + ci


def _procfs(plan: _Plan, profile: Profile) -> None:
    plan.file(
        "proc/driver/nvidia/version",
        f"NVRM version: NVIDIA UNIX x86_64 Kernel Module  {profile.driver_version}  "
        "Release Build  (dvs-builder@U16-I3-B03-4-3)\nGCC version:  gcc version 12.2.0\n",
    )
    minors = ["config 1\nmonitor 2\n"]
    for gpu in profile.gpus:
        first = mig_minor(gpu.minor, 0)  # 1,080 lines on a DGX: one % each, not one per line
        numbers = tuple(range(first, first + _PER_GPU))
        minors.append(_MIG_MINORS_GPU.replace("#", str(gpu.minor)) % numbers)
    plan.file("proc/driver/nvidia-caps/mig-minors", "".join(minors))
    caps = "proc/driver/nvidia/capabilities"
    if any(g.mig_capable for g in profile.gpus):
        plan.file(f"{caps}/mig/config", _cap_file(1, 0o400))
        plan.file(f"{caps}/mig/monitor", _cap_file(2, 0o444))
    for gpu, gi, ci in _mig_instances(profile):
        base = f"{caps}/gpu{gpu.minor}/mig/gi{gi}"
        plan.file(f"{base}/access", _cap_file(mig_minor(gpu.minor, gi), 0o444))
        plan.file(f"{base}/ci{ci}/access", _cap_file(mig_minor(gpu.minor, gi, ci), 0o444))


def _cap_file(minor: int, mode: int) -> str:
    return f"DeviceFileMinor: {minor}\nDeviceFileMode: {mode}\nDeviceFileModify: 1\n"


def _mig_instances(profile: Profile) -> list[tuple[GpuSpec, int, int]]:
    return [
        (gpu, mig.gi_id, mig.ci_id)
        for gpu in profile.gpus
        if gpu.mig_enabled
        for mig in gpu.mig_devices
    ]


def device_nodes(profile: Profile) -> dict[str, tuple[int, int]]:
    """The placeholder device nodes, by path under the driver root: (major, minor)."""
    majors = profile.device_majors
    nodes = {
        "dev/nvidiactl": (majors.nvidia, 255),
        "dev/nvidia-modeset": (majors.nvidia, 254),
        "dev/nvidia-uvm": (majors.nvidia_uvm, 0),
        "dev/nvidia-uvm-tools": (majors.nvidia_uvm, 1),
    }
    nodes.update({f"dev/nvidia{g.minor}": (majors.nvidia, g.minor) for g in profile.gpus})
    if any(g.mig_capable for g in profile.gpus):
        nodes["dev/nvidia-caps/nvidia-cap1"] = (majors.nvidia_caps, 1)
        nodes["dev/nvidia-caps/nvidia-cap2"] = (majors.nvidia_caps, 2)
    for gpu, gi, ci in _mig_instances(profile):
        for minor in (mig_minor(gpu.minor, gi), mig_minor(gpu.minor, gi, ci)):
            nodes[f"dev/nvidia-caps/nvidia-cap{minor}"] = (majors.nvidia_caps, minor)
    if any(g.fabric is not None for g in profile.gpus):
        nodes["dev/nvidia-caps-imex-channels/channel0"] = (majors.nvidia_caps_imex_channels, 0)
    return nodes


def placeholder_mode(path: str) -> int:
    """A placeholder node's permission bits: those the driver gives the real node.

    The capability nodes take the `DeviceFileMode` of their /proc capability file
    (`_procfs`): MIG config is root-only, monitor and instance access read-only; the
    GPU and control nodes are world read-write. A CDI spec copies these as `fileMode`.
    """
    if path == "dev/nvidia-caps/nvidia-cap1":
        return 0o400
    if path.startswith("dev/nvidia-caps/"):
        return 0o444
    return 0o666


def driver_files(
    profile: Profile,
) -> tuple[list[tuple[str, bytes, int]], list[tuple[str, str]]]:
    """The driver root's files (path, data, mode) and symlinks (path, target), but not
    its device nodes (`device_nodes`): paths relative to the driver root.

    What `write_driver` writes under `driver/`, and what `nvidia-cdi generate
    --simulator-root` lays out on a host.
    """
    plan = _Plan()
    _driver_files(plan, profile)
    return plan.files, plan.links


def _driver_files(plan: _Plan, profile: Profile) -> None:
    version = profile.driver_version
    d = LIB_DIR
    for stem, soname, dev_link in _LIBRARIES:
        real = f"{stem}.{version}"
        plan.file(f"{d}/{real}", _placeholder(real))
        if soname is not None:
            plan.link(f"{d}/{stem}.{soname}", real)
            if dev_link:
                plan.link(f"{d}/{stem}", f"{stem}.{soname}")
    plan.file(f"{d}/vdpau/libvdpau_nvidia.so.{version}", _placeholder("libvdpau_nvidia"))
    plan.link(f"{d}/vdpau/libvdpau_nvidia.so.1", f"libvdpau_nvidia.so.{version}")
    for name in ("libnvidia-egl-gbm.so.1.1.1", "libnvidia-egl-wayland.so.1.1.13"):
        plan.file(f"{d}/{name}", _placeholder(name))
        plan.link(f"{d}/{name.split('.so.')[0]}.so.1", name)
    plan.link(f"{d}/gbm/nvidia-drm_gbm.so", "../libnvidia-allocator.so.1")
    plan.file(f"{d}/nvidia/xorg/nvidia_drv.so", _placeholder("nvidia_drv.so"))
    plan.file(f"{d}/nvidia/xorg/libglxserver_nvidia.so.{version}", _placeholder("glxserver"))
    plan.link(f"{d}/nvidia/xorg/libglxserver_nvidia.so", f"libglxserver_nvidia.so.{version}")
    for firmware in _FIRMWARE:
        plan.file(f"lib/firmware/nvidia/{version}/{firmware}", _placeholder(firmware))
    fabric = any(g.fabric is not None for g in profile.gpus)
    for binary in (*_BINARIES, *(("nvidia-imex", "nvidia-imex-ctl") if fabric else ())):
        plan.file(f"usr/bin/{binary}", f"#!/bin/sh\n# {binary} placeholder\n", 0o755)
    _config_files(plan)
    plan.file("run/nvidia-persistenced/socket")
    if profile.nvswitches:
        plan.file("run/nvidia-fabricmanager/socket")


def _placeholder(name: str) -> bytes:
    # Not ELF on purpose: readers that need a SONAME must cope with a library they cannot parse.
    return f"nvlib.sim placeholder for {name}\n".encode()


def _config_files(plan: _Plan) -> None:
    icd = (
        '{"file_format_version": "1.0.1", "ICD": {"library_path": "libGLX_nvidia.so.0", '
        '"api_version": "1.3.277"}}\n'
    )
    egl = '{"file_format_version": "1.0.0", "ICD": {"library_path": "libEGL_nvidia.so.0"}}\n'
    plan.file("etc/vulkan/icd.d/nvidia_icd.json", icd)
    plan.file("etc/vulkan/implicit_layer.d/nvidia_layers.json", icd)
    plan.file("etc/OpenCL/vendors/nvidia.icd", "libnvidia-opencl.so.1\n")
    plan.file("usr/share/glvnd/egl_vendor.d/10_nvidia.json", egl)
    for platform in ("15_nvidia_gbm.json", "10_nvidia_wayland.json"):
        plan.file(f"usr/share/egl/egl_external_platform.d/{platform}", egl)
    plan.file("usr/share/nvidia/nvoptix.bin", _placeholder("nvoptix.bin"))
