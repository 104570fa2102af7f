"""Builders for the `cdi` tests: synthetic driver roots and minimal ELF libraries.

A driver root here is what `nvlib.sim` also supplies: libraries as placeholder files
(or minimal ELF files with a SONAME, to exercise the SONAME links), device nodes as
placeholder files with a (major, minor) map, firmware, binaries and config files. Tests
that need the real simulator beneath pynvml use `nvlib.sim` directly.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

VERSION = "550.54.15"
LIBDIR = "usr/lib/x86_64-linux-gnu"

# ~60 libraries of a realistic 550 driver: the file names `nvidia-ctk` mounts.
DRIVER_LIBRARIES = (
    "libEGL_nvidia.so", "libGLESv1_CM_nvidia.so", "libGLESv2_nvidia.so", "libGLX_nvidia.so",
    "libcuda.so", "libcudadebugger.so", "libnvcuvid.so", "libnvidia-allocator.so",
    "libnvidia-cfg.so", "libnvidia-eglcore.so", "libnvidia-encode.so", "libnvidia-fbc.so",
    "libnvidia-glcore.so", "libnvidia-glsi.so", "libnvidia-glvkspirv.so", "libnvidia-gpucomp.so",
    "libnvidia-ml.so", "libnvidia-ngx.so", "libnvidia-nvvm.so", "libnvidia-opencl.so",
    "libnvidia-opticalflow.so", "libnvidia-pkcs11-openssl3.so", "libnvidia-pkcs11.so",
    "libnvidia-ptxjitcompiler.so", "libnvidia-rtcore.so", "libnvidia-tls.so",
    "libnvoptix.so", "libnvidia-api.so", "libnvidia-egl-gbm.so", "libnvidia-vulkan-producer.so",
    "libnvidia-wayland-client.so", "libnvidia-sandboxutils.so", "libnvidia-fatbinaryloader.so",
    "libnvidia-compiler.so", "libnvidia-cbl.so", "libnvidia-ifr.so", "libnvidia-egl-wayland.so",
    "libnvidia-gtk2.so", "libnvidia-gtk3.so", "libnvidia-wfb.so", "libGL_nvidia.so",
    "libnvidia-nscq.so", "libnvidia-fm.so", "libnvidia-container-go.so", "libnvidia-kms.so",
    "libnvidia-present.so", "libnvidia-vksc-core.so", "libnvidia-gsp.so", "libnvidia-imex.so",
    "libnvidia-nvlsm.so", "libnvidia-cudart.so", "libnvidia-dlss.so", "libnvidia-ngx-dlssg.so",
    "libnvidia-egl-xcb.so", "libnvidia-egl-xlib.so", "libnvidia-pcc.so", "libnvidia-vkdev.so",
    "libnvidia-gbm.so", "libnvidia-ocl.so",
)  # fmt: skip
VDPAU_LIBRARIES = ("libvdpau_nvidia.so",)
BINARIES = ("nvidia-smi", "nvidia-debugdump", "nvidia-persistenced", "nvidia-cuda-mps-control",
            "nvidia-cuda-mps-server")  # fmt: skip


def elf_with_soname(soname: str | None) -> bytes:
    """A minimal x86-64 shared object whose dynamic section holds DT_SONAME (or none).

    Both readers find it: Go's `debug/elf` (and `cdi._elf`) through the section headers,
    `ldconfig` through the PT_LOAD / PT_DYNAMIC program headers, so a test can build a
    real `ld.so.cache` over it without a compiler.
    """
    dynstr = b"\0" + (soname.encode() + b"\0" if soname else b"")
    shstrtab = b"\0.dynstr\0.dynamic\0.shstrtab\0"
    ehdr, phdr = 64, 56
    off_dynstr = ehdr + 2 * phdr
    off_dynamic = (off_dynstr + len(dynstr) + 7) & ~7
    entries = [(5, off_dynstr), (10, len(dynstr))]  # DT_STRTAB (vaddr = offset), DT_STRSZ
    if soname:
        entries.append((14, 1))  # DT_SONAME: offset 1 in .dynstr
    entries.append((0, 0))
    dynamic = b"".join(struct.pack("<qQ", tag, value) for tag, value in entries)
    off_shstr = off_dynamic + len(dynamic)
    off_sh = (off_shstr + len(shstrtab) + 7) & ~7
    size = off_sh + 4 * 64
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    header = ident + struct.pack(
        "<HHIQQQIHHHHHH", 3, 62, 1, 0, ehdr, off_sh, 0, ehdr, phdr, 2, 64, 4, 3
    )
    program = struct.pack("<IIQQQQQQ", 1, 4, 0, 0, 0, size, size, 0x1000)  # PT_LOAD
    program += struct.pack(  # PT_DYNAMIC
        "<IIQQQQQQ", 2, 6, off_dynamic, off_dynamic, off_dynamic, len(dynamic), len(dynamic), 8
    )

    def section(name: int, kind: int, offset: int, size: int, link: int = 0) -> bytes:
        return struct.pack("<IIQQQQIIQQ", name, kind, 0, offset, offset, size, link, 0, 1, 0)

    out = bytearray(header + program + dynstr)
    out += bytes(off_dynamic - len(out)) + dynamic + shstrtab
    out += bytes(off_sh - len(out))
    out += section(0, 0, 0, 0)
    out += section(1, 3, off_dynstr, len(dynstr))
    out += section(9, 6, off_dynamic, len(dynamic), link=1)
    out += section(18, 3, off_shstr, len(shstrtab))
    return bytes(out)


@dataclass
class DriverRoot:
    """A synthetic driver root on disk and the placeholder device nodes in it."""

    path: Path
    version: str = VERSION
    nodes: dict[str, tuple[int, int]] = field(default_factory=dict)

    def add_node(self, relative: str, major: int, minor: int, mode: int = 0o666) -> None:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"")
        target.chmod(mode)
        self.nodes[relative] = (major, minor)

    def add_library(
        self, name: str, directory: str = LIBDIR, soname: str | None = None, links: bool = True
    ) -> Path:
        """`<name>.<version>` (ELF with `soname` if given), and its .1 and .so links."""
        d = self.path / directory
        d.mkdir(parents=True, exist_ok=True)
        real = d / f"{name}.{self.version}"
        real.write_bytes(elf_with_soname(soname) if soname else b"placeholder library\n")
        if links:
            so1 = d / f"{name}.1"
            if not so1.is_symlink():
                so1.symlink_to(real.name)
        return real

    def add_file(self, relative: str, mode: int = 0o644, data: bytes = b"x\n") -> Path:
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        target.chmod(mode)
        return target


def build_driver_root(
    path: Path,
    gpus: int = 1,
    version: str = VERSION,
    libraries: Iterable[str] = DRIVER_LIBRARIES,
    caps: Iterable[int] = (),
) -> DriverRoot:
    root = DriverRoot(path, version)
    for name in libraries:
        root.add_library(name)
    for name in VDPAU_LIBRARIES:
        root.add_library(name, f"{LIBDIR}/vdpau", links=False)
    for name in BINARIES:
        root.add_file(f"usr/bin/{name}", mode=0o755)
    root.add_file(f"lib/firmware/nvidia/{version}/gsp_ga10x.bin")
    root.add_file(f"lib/firmware/nvidia/{version}/gsp_tu10x.bin")
    root.add_file("etc/vulkan/icd.d/nvidia_icd.json")
    root.add_file("usr/share/glvnd/egl_vendor.d/10_nvidia.json")
    root.add_file("usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json")
    root.add_node("dev/nvidiactl", 195, 255)
    root.add_node("dev/nvidia-uvm", 507, 0)
    root.add_node("dev/nvidia-uvm-tools", 507, 1)
    for i in range(gpus):
        root.add_node(f"dev/nvidia{i}", 195, i)
    for minor in caps:
        root.add_node(f"dev/nvidia-caps/nvidia-cap{minor}", 508, minor, mode=0o400)
    return root


def run_cdi(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m cdi ARGS` in a fresh interpreter, without the caller's NVIDIA_CTK_* and
    NVML_* variables (so only `env` sets them), `stdin` piped in."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("NVIDIA_CTK", "NVML_"))}
    environ["PYTHONPATH"] = os.pathsep.join(sys.path)
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "cdi", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=False,
        env=environ,
        timeout=60,
    )
