"""Finding driver files under a driver root, where and in the order nvidia-ctk looks.

Matrix: the library locator (standard dirs, symlinks resolved, vdpau, ld.so.cache as
the fallback only, --library-search-path alone), the driver version fallback, graphics
libraries, X.Org modules, configs (first match, container dirs), firmware, binaries
(executable bit), IPC sockets, device nodes (placeholders, real char devices, DRM
nodes and by-path links, MIG capability nodes), and the ELF / ld.so.cache readers.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
import struct
import subprocess
from pathlib import Path

import gpu_builders as gb
import pytest
from cdi_fixtures import LIBDIR, VERSION, DriverRoot, build_driver_root, elf_with_soname

from cdi._elf import read_soname
from cdi._ldcache import LdCacheError, parse_ld_cache
from cdi._locate import Fs, _filter, matches
from cdi.driverfiles import (
    DeviceNodeInfo,
    FileMount,
    find_driver_files,
    find_hook_path,
)
from cdi.errors import DriverFilesError
from nvlib.migcaps import parse_mig_minors, read_mig_minors

ONE_GPU = gb.machine(gb.gpu(0))


def find(root: DriverRoot, machine=ONE_GPU, **kwargs):  # type: ignore[no-untyped-def]
    kwargs.setdefault("host_root", str(root.path.parent / "host"))
    return find_driver_files(machine, str(root.path), placeholder_nodes=root.nodes, **kwargs)


def paths(mounts: tuple[FileMount, ...]) -> list[str]:
    return [m.path for m in mounts]


def test_version_suffix_libraries_then_vdpau(tmp_path: Path) -> None:
    root = build_driver_root(tmp_path / "r", libraries=("libnvidia-ml.so", "libcuda.so"))
    files = find(root)
    assert files.version == VERSION
    assert files.lib_dirs == (f"/{LIBDIR}",)
    assert paths(files.libraries) == [
        f"/{LIBDIR}/libcuda.so.{VERSION}",
        f"/{LIBDIR}/libnvidia-ml.so.{VERSION}",
        f"/{LIBDIR}/vdpau/libvdpau_nvidia.so.{VERSION}",
    ]
    assert files.libraries[0].host_path == f"{root.path}/{LIBDIR}/libcuda.so.{VERSION}"


def test_other_versions_are_not_mounted(tmp_path: Path) -> None:
    root = build_driver_root(tmp_path / "r", libraries=("libcuda.so",))
    (root.path / LIBDIR / "libcuda.so.535.161.07").write_bytes(b"old driver\n")
    (root.path / LIBDIR / "libfoo.so.1.2.3").write_bytes(b"not the driver\n")
    assert paths(find(root).libraries) == [
        f"/{LIBDIR}/libcuda.so.{VERSION}",
        f"/{LIBDIR}/vdpau/libvdpau_nvidia.so.{VERSION}",
    ]


def test_merged_usr_symlinks_resolve_to_one_directory(tmp_path: Path) -> None:
    """/lib64 -> usr/lib/x86_64-linux-gnu: the same file found twice is one library."""
    root = build_driver_root(tmp_path / "r", libraries=("libcuda.so",))
    (root.path / "lib64").symlink_to(LIBDIR)
    files = find(root)
    assert files.lib_dirs == (f"/{LIBDIR}",)
    assert len(files.libraries) == 2


def test_libraries_in_root_when_no_standard_dir(tmp_path: Path) -> None:
    root = DriverRoot(tmp_path / "r")
    root.add_library("libcuda.so", directory=".")
    files = find(root)
    assert files.lib_dirs == ("/",)
    assert paths(files.libraries) == [f"/libcuda.so.{VERSION}"]


def test_ld_cache_is_the_fallback(tmp_path: Path) -> None:
    """No library in a standard dir: the driver root's ld.so.cache finds them."""
    root = DriverRoot(tmp_path / "r")
    root.add_library("libcuda.so", directory="opt/nvidia/lib64", soname="libcuda.so.1")
    write_ld_cache(root.path, ["/opt/nvidia/lib64/libcuda.so.1"])
    files = find(root)
    assert files.lib_dirs == ("/opt/nvidia/lib64",)
    assert paths(files.libraries) == [f"/opt/nvidia/lib64/libcuda.so.{VERSION}"]


def test_ld_cache_ignored_when_standard_dirs_have_libraries(tmp_path: Path) -> None:
    root = build_driver_root(tmp_path / "r", libraries=("libcuda.so",))
    root.add_library("libnvidia-ml.so", directory="opt/nvidia/lib64")
    write_ld_cache(root.path, [f"/opt/nvidia/lib64/libnvidia-ml.so.{VERSION}"])
    assert find(root).lib_dirs == (f"/{LIBDIR}",)


def test_library_search_path_replaces_both(tmp_path: Path) -> None:
    root = build_driver_root(tmp_path / "r", libraries=("libcuda.so",))
    elsewhere = DriverRoot(tmp_path / "elsewhere")
    elsewhere.add_library("libcuda.so", directory="lib64")
    files = find(root, library_search_paths=[str(elsewhere.path / "lib64")])
    # Outside the driver root, the container path is the host path (toolkit behaviour).
    assert files.lib_dirs == (str(elsewhere.path / "lib64"),)


def test_no_libraries_is_an_error(tmp_path: Path) -> None:
    root = build_driver_root(tmp_path / "r", libraries=())
    shutil.rmtree(root.path / LIBDIR)
    with pytest.raises(DriverFilesError, match=r"lib\*\.so\.550\.54\.15.*--library-search-path"):
        find(root)


def test_version_from_libcuda_when_nvml_has_none(tmp_path: Path) -> None:
    root = build_driver_root(tmp_path / "r", version="999.88.77", libraries=("libcuda.so",))
    files = find(root, machine=gb.machine(gb.gpu(0), driver=""))
    assert files.version == "999.88.77"


def test_no_version_anywhere(tmp_path: Path) -> None:
    root = DriverRoot(tmp_path / "r")
    root.add_file("usr/bin/nvidia-smi", mode=0o755)
    with pytest.raises(DriverFilesError, match='failed to determine driver version \\(""\\)'):
        find(root, machine=gb.machine(gb.gpu(0), driver=""))


def test_soname_links_seen_on_the_host(tmp_path: Path) -> None:
    root = DriverRoot(tmp_path / "r")
    real = root.add_library("libEGL_nvidia.so", soname="libEGL_nvidia.so.0", links=False)
    (real.parent / "libEGL_nvidia.so.0").symlink_to(real.name)
    (real.parent / "libEGL_nvidia.so").symlink_to("libEGL_nvidia.so.0")
    root.add_library("libcuda.so", soname="libcuda.so.1", links=False)  # no links on the host
    libraries = {os.path.basename(lib.path): lib for lib in find(root).libraries}
    egl = libraries[f"libEGL_nvidia.so.{VERSION}"]
    assert (egl.soname, egl.host_links) == (
        "libEGL_nvidia.so.0",
        frozenset({"libEGL_nvidia.so.0", "libEGL_nvidia.so"}),
    )
    cuda = libraries[f"libcuda.so.{VERSION}"]
    assert (cuda.soname, cuda.host_links) == ("libcuda.so.1", frozenset())


def test_graphics_xorg_configs_firmware_binaries_sockets(tmp_path: Path) -> None:
    root = build_driver_root(tmp_path / "r", libraries=("libcuda.so", "libnvidia-allocator.so"))
    root.add_file(f"{LIBDIR}/libnvidia-egl-gbm.so.1.1.1")
    root.add_file(f"{LIBDIR}/nvidia/xorg/nvidia_drv.so")
    root.add_file(f"{LIBDIR}/nvidia/xorg/libglxserver_nvidia.so.{VERSION}")
    root.add_file("usr/lib/xorg/modules/drivers/nvidia_drv.so")  # later dir: not taken
    root.add_file("usr/share/X11/xorg.conf.d/10-nvidia.conf")
    root.add_file("usr/local/share/glvnd/egl_vendor.d/10_nvidia.json")  # first match wins
    root.add_file("etc/OpenCL/vendors/nvidia.icd")
    root.add_file("vulkan/icd.d/nvidia_layers.json")  # GKE: directly under the root
    root.add_file("usr/bin/nvidia-imex")  # not executable: not a binary
    root.add_file("run/nvidia-persistenced/socket")
    root.add_file("var/run/nvidia-fabricmanager/socket")
    (root.path / "tmp/nvidia-mps").mkdir(parents=True)
    files = find(root)
    assert paths(files.graphics_libraries) == [
        f"/{LIBDIR}/libnvidia-egl-gbm.so.1.1.1",
        f"/{LIBDIR}/libnvidia-allocator.so.{VERSION}",
    ]
    assert paths(files.xorg_libraries) == [
        f"/{LIBDIR}/nvidia/xorg/nvidia_drv.so",
        f"/{LIBDIR}/nvidia/xorg/libglxserver_nvidia.so.{VERSION}",
    ]
    assert [(m.host_path.removeprefix(str(root.path)), m.path) for m in files.configs] == [
        (
            "/usr/local/share/glvnd/egl_vendor.d/10_nvidia.json",
            "/usr/share/glvnd/egl_vendor.d/10_nvidia.json",
        ),
        (
            "/usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json",
            "/usr/share/egl/egl_external_platform.d/15_nvidia_gbm.json",
        ),
        ("/usr/share/X11/xorg.conf.d/10-nvidia.conf", "/usr/share/X11/xorg.conf.d/10-nvidia.conf"),
        ("/etc/OpenCL/vendors/nvidia.icd", "/etc/OpenCL/vendors/nvidia.icd"),
        ("/etc/vulkan/icd.d/nvidia_icd.json", "/etc/vulkan/icd.d/nvidia_icd.json"),
        ("/vulkan/icd.d/nvidia_layers.json", "/etc/vulkan/icd.d/nvidia_layers.json"),
    ]
    assert paths(files.firmware) == [
        f"/lib/firmware/nvidia/{VERSION}/gsp_ga10x.bin",
        f"/lib/firmware/nvidia/{VERSION}/gsp_tu10x.bin",
    ]
    assert paths(files.binaries) == [
        "/usr/bin/nvidia-smi",
        "/usr/bin/nvidia-debugdump",
        "/usr/bin/nvidia-persistenced",
        "/usr/bin/nvidia-cuda-mps-control",
        "/usr/bin/nvidia-cuda-mps-server",
    ]
    assert paths(files.ipc_sockets) == [
        "/run/nvidia-persistenced/socket",
        "/var/run/nvidia-fabricmanager/socket",
    ]
    assert find(root, ipc_sockets=False).ipc_sockets == ()


def test_control_and_gpu_nodes_from_placeholders(tmp_path: Path) -> None:
    root = build_driver_root(tmp_path / "r", gpus=2, libraries=("libcuda.so",))
    (root.path / "dev/nvidia-modeset").write_bytes(b"")  # a plain file, not in the map
    files = find(root, machine=gb.machine(gb.gpu(0), gb.gpu(1)))
    assert sorted(files.device_nodes) == [
        "/dev/nvidia-uvm",
        "/dev/nvidia-uvm-tools",
        "/dev/nvidia0",
        "/dev/nvidia1",
        "/dev/nvidiactl",
    ]
    assert files.device_nodes["/dev/nvidiactl"] == DeviceNodeInfo(
        "/dev/nvidiactl", f"{root.path}/dev/nvidiactl", 195, 255, 0o666, os.getgid()
    )


@pytest.mark.skipif(os.geteuid() != 0, reason="mknod needs root")
def test_real_character_devices(tmp_path: Path) -> None:
    root = build_driver_root(tmp_path / "r", gpus=0, libraries=("libcuda.so",))
    os.mknod(root.path / "dev/nvidia0", 0o620 | 0o020000, os.makedev(195, 0))
    os.chown(root.path / "dev/nvidia0", 0, 44)
    os.chmod(root.path / "dev/nvidia0", 0o620)  # mknod's mode went through the umask
    files = find_driver_files(ONE_GPU, str(root.path), host_root=str(tmp_path / "host"))
    assert files.device_nodes["/dev/nvidia0"] == DeviceNodeInfo(
        "/dev/nvidia0", f"{root.path}/dev/nvidia0", 195, 0, 0o620, 44
    )
    assert "/dev/nvidiactl" not in files.device_nodes  # placeholders need the map


def test_dev_root_apart_from_driver_root(tmp_path: Path) -> None:
    root = build_driver_root(tmp_path / "r", libraries=("libcuda.so",))
    dev = DriverRoot(tmp_path / "devroot")
    dev.add_node("dev/nvidia0", 195, 0)
    files = find_driver_files(
        ONE_GPU,
        str(root.path),
        str(dev.path),
        placeholder_nodes=dev.nodes,
        host_root=str(tmp_path / "host"),
    )
    assert files.device_nodes["/dev/nvidia0"].host_path == f"{dev.path}/dev/nvidia0"
    assert "/dev/nvidiactl" not in files.device_nodes


def test_drm_nodes_and_by_path_links(tmp_path: Path) -> None:
    root = build_driver_root(tmp_path / "r", libraries=("libcuda.so",))
    host = tmp_path / "host"
    gpu = gb.gpu(0)
    drm = host / "sys/bus/pci/devices" / gpu.sysfs_bus_id / "drm"
    for entry in ("card1", "renderD128", "controlD64"):
        (drm / entry).mkdir(parents=True)
    root.add_node("dev/dri/card1", 226, 1)
    root.add_node("dev/dri/renderD128", 226, 128, mode=0o660)
    by_path = root.path / "dev/dri/by-path"
    by_path.mkdir()
    (by_path / f"pci-{gpu.sysfs_bus_id}-card").symlink_to("../card1")
    files = find(root, host_root=str(host))
    assert files.drm_entries == {gpu.sysfs_bus_id: ("card1", "controlD64", "renderD128")}
    assert {"/dev/dri/card1", "/dev/dri/renderD128"} <= set(files.device_nodes)
    assert "/dev/dri/controlD64" not in files.device_nodes
    assert files.by_path_links == {f"/dev/dri/by-path/pci-{gpu.sysfs_bus_id}-card": "../card1"}


def test_mig_capability_nodes(tmp_path: Path) -> None:
    machine = gb.machine(gb.gpu(0, migs=("3g.20gb", "1g.5gb")))
    host = tmp_path / "host"
    (host / "proc/driver/nvidia-caps").mkdir(parents=True)
    (host / "proc/driver/nvidia-caps/mig-minors").write_text(
        "config 1\nmonitor 2\ngpu0/gi0/access 21\ngpu0/gi0/ci0/access 22\n"
        "gpu0/gi1/access 30\ngpu0/gi1/ci0/access 31\n"
    )
    root = build_driver_root(tmp_path / "r", libraries=("libcuda.so",), caps=(21, 22, 30))
    files = find(root, machine=machine, host_root=str(host))
    assert files.mig_minors["gpu0/gi1/ci0/access"] == 31
    caps = sorted(p for p in files.device_nodes if "caps" in p)
    assert caps == [  # cap31 has no node: left out
        "/dev/nvidia-caps/nvidia-cap21",
        "/dev/nvidia-caps/nvidia-cap22",
        "/dev/nvidia-caps/nvidia-cap30",
    ]
    assert files.device_nodes["/dev/nvidia-caps/nvidia-cap21"].mode == 0o400


def test_parse_mig_minors() -> None:
    text = "config 1\nmonitor 2\ngpu0/gi7/ci0/access 73\n\ngarbage\n"
    assert parse_mig_minors(text) == {"config": 1, "monitor": 2, "gpu0/gi7/ci0/access": 73}


def test_read_mig_minors_reads_the_file_each_time(tmp_path: Path) -> None:
    """The parse of an unchanged text is reused; a changed file is read afresh."""
    table = tmp_path / "proc/driver/nvidia-caps/mig-minors"
    table.parent.mkdir(parents=True)
    table.write_text("gpu0/gi1/access 12\n")
    first = read_mig_minors(tmp_path)
    first["gpu0/gi1/access"] = 99  # the caller's copy: the next read is unaffected
    assert read_mig_minors(tmp_path) == {"gpu0/gi1/access": 12}
    table.write_text("gpu0/gi1/access 13\n")
    assert read_mig_minors(tmp_path) == {"gpu0/gi1/access": 13}
    table.unlink()
    assert read_mig_minors(tmp_path) == {}


@pytest.mark.parametrize(
    ("value", "on_path", "found"),
    [
        pytest.param("/opt/hook", (), "/opt/hook", id="absolute-as-is"),
        pytest.param(None, (), "/usr/bin/nvidia-cdi-hook", id="default-when-missing"),
        pytest.param(None, ("nvidia-cdi-hook",), "{bin}/nvidia-cdi-hook", id="found-on-path"),
        pytest.param(None, ("nvidia-ctk",), "{bin}/nvidia-ctk", id="nvidia-ctk-fallback"),
        pytest.param("my-hook", ("my-hook",), "{bin}/my-hook", id="name-searched"),
    ],
)
def test_find_hook_path(
    tmp_path: Path, value: str | None, on_path: tuple[str, ...], found: str
) -> None:
    for name in on_path:
        (tmp_path / name).write_text("#!/bin/sh\n")
        (tmp_path / name).chmod(0o755)
    result = find_hook_path(value, path_env=str(tmp_path))
    if found.startswith("/usr/bin") and os.path.exists(found):
        pytest.skip("this host has a real nvidia-cdi-hook")
    assert result == found.format(bin=tmp_path)


# --- the ELF and ld.so.cache readers ---


@pytest.mark.parametrize(
    ("data", "soname"),
    [
        pytest.param(elf_with_soname("libcuda.so.1"), "libcuda.so.1", id="soname"),
        pytest.param(elf_with_soname(None), "libx.so.1.2.3", id="no-soname-is-file-name"),
        pytest.param(b"placeholder\n", None, id="not-elf"),
        pytest.param(b"\x7fELF\x02\x01\x01" + bytes(9), None, id="truncated"),
    ],
)
def test_read_soname(tmp_path: Path, data: bytes, soname: str | None) -> None:
    path = tmp_path / "libx.so.1.2.3"
    path.write_bytes(data)
    assert read_soname(str(path)) == soname


def ld_cache_bytes(entries: list[tuple[int, str]]) -> bytes:
    """A new-format (glibc-ld.so.cache1.1) cache with (flags, path) entries."""
    strings = b""
    table = b""
    header_size = 48 + 24 * len(entries)
    for flags, path in entries:
        key = header_size + len(strings)
        strings += os.path.basename(path).encode() + b"\0"
        value = header_size + len(strings)
        strings += path.encode() + b"\0"
        table += struct.pack("<iIIIQ", flags, key, value, 0, 0)
    header = b"glibc-ld.so.cache1.1" + struct.pack("<II", len(entries), len(strings))
    header += bytes(48 - len(header))
    return header + table + strings


def write_ld_cache(root: Path, libraries: list[str]) -> None:
    (root / "etc").mkdir(parents=True, exist_ok=True)
    (root / "etc/ld.so.cache").write_bytes(ld_cache_bytes([(0x0303, p) for p in libraries]))


def test_parse_ld_cache_keeps_64_bit_apart() -> None:
    data = ld_cache_bytes(
        [
            (0x0303, "/usr/lib/x86_64-linux-gnu/libcuda.so.1"),  # x86-64 ELF
            (0x0003, "/usr/lib/i386-linux-gnu/libcuda.so.1"),  # i386
            (0x0A03, "/usr/lib/aarch64-linux-gnu/libcuda.so.1"),  # aarch64
            (0x0302, "/usr/lib/x86_64-linux-gnu/libnot-elf.so"),  # no ELF bit
            (0x0703, "/usr/lib/odd/libodd.so"),  # unknown architecture
        ]
    )
    assert parse_ld_cache(data) == (
        ["/usr/lib/i386-linux-gnu/libcuda.so.1"],
        ["/usr/lib/x86_64-linux-gnu/libcuda.so.1", "/usr/lib/aarch64-linux-gnu/libcuda.so.1"],
    )


def test_parse_old_format_followed_by_new() -> None:
    new = ld_cache_bytes([(0x0303, "/lib/libcuda.so.1")])
    old = b"ld.so-1.7.0\0" + struct.pack("<I", 0)
    padded = old + bytes(-len(old) % 8)
    libs32, libs64 = parse_ld_cache(padded + new)
    assert (libs32, libs64) == ([], ["/lib/libcuda.so.1"])


@pytest.mark.parametrize("data", [b"", b"not a cache", b"glibc-ld.so.cache1.1" + bytes(8)])
def test_parse_ld_cache_rejects(data: bytes) -> None:
    with pytest.raises(LdCacheError):
        parse_ld_cache(data)


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ldconfig") is None,
    reason="`ldconfig -r` chroots: needs root (CI runs as root)",
)
def test_real_ldconfig_cache(tmp_path: Path) -> None:
    """A cache written by glibc's ldconfig, read the toolkit's way."""
    root = DriverRoot(tmp_path / "r")
    root.add_library("libcuda.so", directory="opt/nvidia/lib", soname="libcuda.so.1", links=False)
    (root.path / "etc").mkdir()
    (root.path / "etc/ld.so.conf").write_text("/opt/nvidia/lib\n")
    subprocess.run(["ldconfig", "-r", str(root.path)], check=True)
    assert (root.path / "opt/nvidia/lib/libcuda.so.1").is_symlink()  # made by ldconfig
    libs32, libs64 = parse_ld_cache((root.path / "etc/ld.so.cache").read_bytes())
    assert (libs32, libs64) == ([], ["/opt/nvidia/lib/libcuda.so.1"])
    files = find(root)
    assert paths(files.libraries) == [f"/opt/nvidia/lib/libcuda.so.{VERSION}"]


@pytest.mark.parametrize(
    "pattern",
    [
        "libcuda.so.*.*",
        "lib*.so.550.54.15",
        "*.so.550.54.15",
        "*.*.*",
        "*",
        "**",
        "a*a*a",
        "libcuda.so",
        "gsp*.bin",
        "/r/usr/lib/*/libcuda.so.*",
        "lib?*.so*",
        "lib[cn]*.so.*",
        "",
    ],
)
def test_matches_is_fnmatchcase(pattern: str) -> None:
    names = [
        "", "a", "aa", "aaa", "aaaa", "aXaYa", "libcuda.so", "libcuda.so.1",
        "libcuda.so.550.54.15", "libcuda.so.550", "lib.so.550.54.15", "libnvidia-ml.so.550.54.15",
        "gsp_ga10x.bin", "gsp.bin", "gsp", "/r/usr/lib/x86_64-linux-gnu/libcuda.so.1",
        "/r/usr/lib/a/b/libcuda.so.1", "LIBCUDA.SO.1.2", "x.y.z", "x..", "..", "libnvidia.so",
    ]  # fmt: skip
    for name in names:
        assert matches(name, pattern) == fnmatch.fnmatchcase(name, pattern), (name, pattern)
    assert _filter(names, pattern) == [n for n in names if fnmatch.fnmatchcase(n, pattern)]


def test_fs_answers_from_listings_as_os_path_does(tmp_path: Path) -> None:
    """Fs answers lexists / islink / is-file / realpath from one scandir per directory."""
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    (tmp_path / "link-file").symlink_to("file")
    (tmp_path / "link-dir").symlink_to("dir")
    (tmp_path / "dangling").symlink_to("nowhere")
    (tmp_path / "dir" / "inner").write_text("y")
    fs = Fs()
    names = ["dir", "file", "link-file", "link-dir", "dangling", "missing", "dir/inner",
             "link-dir/inner", "missing-dir/x", "file/x"]  # fmt: skip
    for name in names:
        path = str(tmp_path / name)
        assert fs.lexists(path) == os.path.lexists(path), name
        assert fs.is_link(path) == os.path.islink(path), name
        assert fs.is_file(path) == (os.path.exists(path) and not os.path.isdir(path)), name
        assert fs.realpath(path) == os.path.realpath(path), name
    assert fs.listdir(str(tmp_path)) == tuple(sorted(os.listdir(tmp_path)))
    assert fs.listdir(str(tmp_path / "missing")) == ()
