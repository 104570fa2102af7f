"""Walk a driver root and a dev root for the files a CDI spec injects.

The one module of `cdi` that reads the host (docs/architecture.md): it returns `DriverFiles`, a
plain record of what was found, and `cdi.generate` turns that record into a spec without
touching the disk. What it looks for, where and in which order follows `nvidia-ctk cdi
generate` v1.20 (docs/cdi.md#generate): control device nodes, each GPU's node and DRM nodes,
MIG capability nodes, the libraries of the running driver version (standard directories
first, `ld.so.cache` as the fallback, or `--library-search-path`), graphics libraries and
configs, GSP firmware, binaries and IPC sockets.

Host facts outside the driver root (`/sys` for DRM nodes, `/proc` for MIG capability
minors, the firmware search path) are read under `host_root`, so the simulator's host
tree replaces `/`. The simulator's placeholder device nodes are regular files that count
as character devices with the major and minor it gives (`placeholder_nodes`).
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NamedTuple

from cdi._elf import read_soname
from cdi._locate import Fs, bin_dirs, in_root, relative_to_root
from cdi.errors import DriverFilesError
from nvlib.migcaps import cap_device, mig_cap_keys, read_mig_minors
from nvlib.model import Machine

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_HOOK_PATH",
    "DeviceNodeInfo",
    "DriverFiles",
    "FileMount",
    "Library",
    "RootWalk",
    "find_driver_files",
    "find_hook_path",
]

DEFAULT_HOOK_PATH = "/usr/bin/nvidia-cdi-hook"

# Looked up in this order; the spec sorts them.
CONTROL_NODES = (
    "/dev/nvidia-modeset",
    "/dev/nvidia-uvm-tools",
    "/dev/nvidia-uvm",
    "/dev/nvidiactl",
)

# Graphics libraries found through the library locator. The ones
# without the driver version in their name carry their own X.Y.Z versions.
_GRAPHICS_LIBRARIES = (
    "libnvidia-egl-gbm.so.*.*",
    "libnvidia-egl-wayland.so.*.*",
    "libnvidia-egl-wayland2.so.*.*",
    "libnvidia-egl-xcb.so.*.*",
    "libnvidia-egl-xlib.so.*.*",
)
_EXPLICIT_LIBRARIES = (
    "libEGL.so",
    "libGL.so",
    "libGLESv1_CM.so",
    "libGLESv2.so",
    "libGLX.so",
    "libGLdispatch.so",
    "libOpenCL.so",
    "libOpenGL.so",
    "libnvidia-api.so",
    "libnvidia-egl-xcb.so",
    "libnvidia-egl-xlib.so",
)
# X.Org modules: first match under each driver library dir, then the system X dirs.
_XORG_LIB_SUBDIRS = (
    "nvidia/xorg",
    "xorg/modules/drivers",
    "xorg/modules/extensions",
    "xorg/modules/updates/drivers",
    "xorg/modules/updates/extensions",
)
_XORG_DIRS = ("/usr/lib/xorg", "/usr/lib64/xorg", "/usr/X11R6/lib", "/usr/X11R6/lib64")
_XORG_SUBDIRS = (
    "modules/drivers",
    "modules/extensions",
    "modules/updates/drivers",
    "modules/updates/extensions",
)

# Config files: first match each, mounted under /usr/share or /etc.
_SHARE_CONFIGS = (
    "glvnd/egl_vendor.d/10_nvidia.json",
    "egl/egl_external_platform.d/15_nvidia_gbm.json",
    "egl/egl_external_platform.d/10_nvidia_wayland.json",
    "egl/egl_external_platform.d/09_nvidia_wayland2.json",
    "egl/egl_external_platform.d/20_nvidia_xcb.json",
    "egl/egl_external_platform.d/20_nvidia_xlib.json",
    "nvidia/nvoptix.bin",
    "X11/xorg.conf.d/10-nvidia.conf",
    "X11/xorg.conf.d/nvidia-drm-outputclass.conf",
)
_ETC_CONFIGS = ("OpenCL/vendors/nvidia.icd",)
_VULKAN_CONFIGS = (
    "vulkan/icd.d/nvidia_icd.json",
    "vulkan/icd.d/nvidia_layers.json",
    "vulkan/implicit_layer.d/nvidia_layers.json",
)
_VULKAN_ARCH_ICD = {
    "x86_64": "vulkan/icd.d/nvidia_icd.x86_64.json",
    "aarch64": "vulkan/icd.d/nvidia_icd.aarch64.json",
}

_BINARIES = (
    "nvidia-smi",
    "nvidia-debugdump",
    "nvidia-persistenced",
    "nvidia-cuda-mps-control",
    "nvidia-cuda-mps-server",
    "nvidia-imex",
    "nvidia-imex-ctl",
)
_IPC_SOCKETS = ("nvidia-persistenced/socket", "nvidia-fabricmanager/socket")


class DeviceNodeInfo(NamedTuple):
    """A character device found under the dev root, with what `stat` says about it."""

    path: str  # in the container: /dev/nvidia0
    host_path: str  # on the host: <dev-root>/dev/nvidia0
    major: int
    minor: int
    mode: int  # permission bits (0o666)
    gid: int


class FileMount(NamedTuple):
    """A file bind-mounted read-only at `path` in the container."""

    host_path: str
    path: str


class Library(NamedTuple):
    """A driver library mount, with what its SONAME and `.so` links need."""

    host_path: str
    path: str
    soname: str | None = None  # DT_SONAME; the file name if none; None if unreadable
    # Names among (SONAME, `.so` name) that exist as symlinks beside it on the host.
    host_links: frozenset[str] = frozenset()


_EMPTY: Mapping[str, Any] = MappingProxyType({})


class DriverFiles(NamedTuple):
    """Everything `generate_spec` needs from the host, found once per pass."""

    driver_root: str
    dev_root: str
    version: str  # the driver version the libraries were found for
    lib_dirs: tuple[str, ...]  # container paths of the driver library directories
    libraries: tuple[Library, ...]  # version-suffix libraries, then nvvm70, then explicit
    graphics_libraries: tuple[FileMount, ...] = ()  # incl. libnvidia-allocator (not mounted)
    xorg_libraries: tuple[FileMount, ...] = ()
    configs: tuple[FileMount, ...] = ()
    firmware: tuple[FileMount, ...] = ()
    binaries: tuple[FileMount, ...] = ()
    ipc_sockets: tuple[FileMount, ...] = ()
    # Character devices found, by container path (control, GPU, DRM and MIG cap nodes).
    device_nodes: Mapping[str, DeviceNodeInfo] = _EMPTY
    # sysfs PCI bus id -> entry names of its drm/ directory ("card1", "renderD128").
    drm_entries: Mapping[str, tuple[str, ...]] = _EMPTY
    # /dev/dri/by-path link (container path) -> its readlink target ("../card1").
    by_path_links: Mapping[str, str] = _EMPTY
    # "gpu0/gi1/access" -> capability minor, from /proc/driver/nvidia-caps/mig-minors.
    mig_minors: Mapping[str, int] = _EMPTY


def find_hook_path(value: str | None = None, path_env: str | None = None) -> str:
    """The `nvidia-cdi-hook` path written into hooks (`--nvidia-cdi-hook-path`).

    An absolute path is used as is. Otherwise the name (default `nvidia-cdi-hook`, then
    `nvidia-ctk`) is searched in `$PATH` and the standard bin directories of this host;
    not found, the default `/usr/bin/nvidia-cdi-hook` is written: the hook runs on the
    host that runs containers, which need not be this one.
    """
    if value and value.startswith("/"):
        return value
    fs = Fs()
    dirs = bin_dirs(path_env)
    for name in [value] if value else ["nvidia-cdi-hook", "nvidia-ctk"]:
        found = fs.locate_executable("/", name, dirs)
        if found is not None:
            return found
    return DEFAULT_HOOK_PATH


class RootWalk:
    """One pass: the roots, the cached file system view, and the placeholder nodes.

    Shared with `cdi.devnodes`, whose node walks must read nodes exactly as this does.
    """

    def __init__(
        self,
        driver_root: str,
        dev_root: str,
        host_root: str,
        placeholder_nodes: Mapping[str, tuple[int, int]],
    ) -> None:
        self.root, self.dev_root, self.host_root = driver_root, dev_root, host_root
        self.placeholders = {p.lstrip("/"): mm for p, mm in placeholder_nodes.items()}
        self.fs = Fs()

    def mount(self, host_path: str) -> FileMount:
        return FileMount(host_path, relative_to_root(self.root, host_path))

    def char_device(self, path: str) -> DeviceNodeInfo | None:
        """The char-device locator: `<dev-root><path>`, then `<dev-root>/dev<path>`."""
        for prefix in ("", "/dev"):
            host_path = in_root(self.dev_root, prefix + path)
            try:
                st = os.lstat(host_path)
            except OSError:
                continue
            if stat.S_ISCHR(st.st_mode):
                major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
            elif stat.S_ISREG(st.st_mode):
                placeholder = self.placeholders.get(
                    relative_to_root(self.dev_root, host_path).lstrip("/")
                )
                if placeholder is None:
                    continue
                major, minor = placeholder
            else:
                continue
            container = relative_to_root(self.dev_root, host_path)
            return DeviceNodeInfo(
                container, host_path, major, minor, stat.S_IMODE(st.st_mode), st.st_gid
            )
        return None

    def host_file(self, path: str) -> str | None:
        try:
            with open(in_root(self.host_root, path), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return None


def _driver_version(walk: RootWalk, version: str, search: Sequence[str]) -> str:
    """NVML's answer, else the suffix of the first libcuda / libnvidia-ml."""
    if version and version != "*.*":
        return version
    for stem in ("libcuda.so.", "libnvidia-ml.so."):
        found = walk.fs.locate_library(walk.root, stem + "*.*", search)
        if found:
            return os.path.basename(found[0])[len(stem) :]
    raise DriverFilesError(f'failed to determine driver version ("{version}")')


def _lib_dirs(walk: RootWalk, version: str, search: Sequence[str]) -> tuple[str, ...]:
    found = walk.fs.locate_library(walk.root, f"lib*.so.{version}", search)
    if not found:
        where = ", ".join(search) if search else f"{walk.root} (standard dirs, ld.so.cache)"
        raise DriverFilesError(
            f"failed to locate driver libraries lib*.so.{version} in {where}; "
            "use --library-search-path for a non-standard directory"
        )
    dirs = dict.fromkeys(relative_to_root(walk.root, os.path.dirname(p)) for p in found)
    return tuple(dirs)


def _library(walk: RootWalk, host_path: str) -> Library:
    mount = walk.mount(host_path)
    name = os.path.basename(host_path)
    soname = read_soname(host_path) if name.count(".") >= 2 else None
    links: set[str] = set()
    if soname is not None:
        directory = os.path.dirname(host_path)
        for candidate in (soname, so_link_name(soname)):
            if candidate and walk.fs.is_link(os.path.join(directory, candidate)):
                links.add(candidate)
    return Library(mount.host_path, mount.path, soname, frozenset(links))


def so_link_name(name: str) -> str:
    """`libfoo.so.1.2` -> `libfoo.so`; "" when there is no `.so` extension (toolkit getSoLink)."""
    while True:
        stem, ext = os.path.splitext(name)
        if not ext:
            return ""
        if ext == ".so":
            return name
        name = stem


def _libraries(
    walk: RootWalk, version: str, lib_dirs: Sequence[str], explicit: bool
) -> tuple[Library, ...]:
    # DriverLibraryLocator: the driver library directories, then their vdpau/ subdirs.
    with_vdpau = [*lib_dirs, *(f"{d.rstrip('/')}/vdpau" for d in lib_dirs)]
    paths = walk.fs.locate_resolved(walk.root, with_vdpau, f"*.so.{version}")
    paths += walk.fs.locate_resolved(walk.root, lib_dirs, "libnvidia-nvvm70.so.*")
    if explicit:
        for name in _EXPLICIT_LIBRARIES:
            paths += walk.fs.locate_resolved(walk.root, lib_dirs, name)
    return tuple(_library(walk, p) for p in dict.fromkeys(paths))


def _graphics(
    walk: RootWalk, version: str, lib_dirs: Sequence[str], search: Sequence[str]
) -> tuple[tuple[FileMount, ...], tuple[FileMount, ...]]:
    patterns = (
        *_GRAPHICS_LIBRARIES,
        f"libnvidia-allocator.so.{version}",
        f"libnvidia-vulkan-producer.so.{version}",
    )
    libraries = [
        walk.mount(p)
        for pattern in patterns
        for p in walk.fs.locate_library(walk.root, pattern, search)
    ]
    xorg_dirs = [f"{d.rstrip('/')}/{sub}" for d in lib_dirs for sub in _XORG_LIB_SUBDIRS]
    xorg_dirs += [f"{d}/{sub}" for d in _XORG_DIRS for sub in _XORG_SUBDIRS]
    xorg = [
        walk.mount(p)
        for name in ("nvidia_drv.so", f"libglxserver_nvidia.so.{version}")
        for p in walk.fs.locate(walk.root, xorg_dirs, name, count=1)
    ]
    return tuple(_unique_mounts(libraries)), tuple(_unique_mounts(xorg))


def _configs(walk: RootWalk, config_search: Sequence[str]) -> tuple[FileMount, ...]:
    if config_search:
        root, dirs = "/", list(config_search)  # explicit config paths are host paths
    else:
        xdg = os.environ.get("XDG_DATA_DIRS") or "/usr/local/share:/usr/share"
        root, dirs = walk.root, ["/etc", *(d for d in xdg.split(":") if d)]
    mounts = []
    wanted = [(c, "/usr/share") for c in _SHARE_CONFIGS] + [(c, "/etc") for c in _ETC_CONFIGS]
    for name, container_dir in wanted:
        found = walk.fs.locate(root, dirs, name, count=1)
        if found:
            mounts.append(FileMount(found[0], f"{container_dir}/{name}"))
    vulkan = [*_VULKAN_CONFIGS]
    arch_icd = _VULKAN_ARCH_ICD.get(os.uname().machine)
    if arch_icd:
        vulkan.append(arch_icd)
    for name in vulkan:
        # Also directly under the driver root: GKE installs <root>/vulkan/icd.d/...
        found = walk.fs.locate(root, dirs, name, count=1) or walk.fs.locate(
            walk.root, (), name, count=1
        )
        if found:
            mounts.append(FileMount(found[0], f"/etc/{name}"))
    return tuple(mounts)


def _firmware(walk: RootWalk, version: str) -> tuple[FileMount, ...]:
    release = os.uname().release
    dirs = []
    custom = (walk.host_file("/sys/module/firmware_class/parameters/path") or "").strip()
    if custom:
        dirs.append(custom)
    dirs += [
        f"/lib/firmware/updates/{release}",
        "/lib/firmware/updates/",
        f"/lib/firmware/{release}",
        "/lib/firmware/",
    ]
    found = walk.fs.locate(walk.root, dirs, f"nvidia/{version}/gsp*.bin")
    return tuple(_unique_mounts(walk.mount(p) for p in found))


def _binaries(walk: RootWalk) -> tuple[FileMount, ...]:
    dirs = bin_dirs()
    found = (walk.fs.locate_executable(walk.root, name, dirs) for name in _BINARIES)
    return tuple(walk.mount(p) for p in found if p is not None)


def _ipc_sockets(walk: RootWalk) -> tuple[FileMount, ...]:
    mounts = []
    for socket in _IPC_SOCKETS:
        found = walk.fs.locate(walk.root, ("/run", "/var/run"), socket, count=1)
        if found:
            mounts.append(walk.mount(found[0]))
    # /tmp/nvidia-mps is a directory, which the toolkit's file filter rejects too.
    return tuple(mounts)


def _unique_mounts(mounts: Iterable[FileMount]) -> list[FileMount]:
    """First occurrence kept: a file found twice (two search paths) is mounted once."""
    return list(dict.fromkeys(mounts))


def _device_nodes(
    walk: RootWalk, machine: Machine, mig_minors: Mapping[str, int]
) -> tuple[dict[str, DeviceNodeInfo], dict[str, tuple[str, ...]], dict[str, str]]:
    wanted = list(CONTROL_NODES)
    drm: dict[str, tuple[str, ...]] = {}
    for gpu in machine.gpus:
        if gpu.minor >= 0:
            wanted.append(f"/dev/nvidia{gpu.minor}")
        entries = walk.fs.listdir(
            in_root(walk.host_root, f"/sys/bus/pci/devices/{gpu.sysfs_bus_id}/drm")
        )
        drm[gpu.sysfs_bus_id] = entries
        wanted += [f"/dev/dri/{entry}" for entry in entries]
        for mig in gpu.mig_devices:
            for key in mig_cap_keys(gpu.minor, mig.gi_id, mig.ci_id):
                if key in mig_minors:
                    wanted.append(cap_device(mig_minors[key]))
    nodes: dict[str, DeviceNodeInfo] = {}
    for path in dict.fromkeys(wanted):
        node = walk.char_device(path)
        if node is not None:
            nodes[node.path] = node
    links: dict[str, str] = {}
    for gpu in machine.gpus:
        for suffix in ("card", "render"):
            link = f"/dev/dri/by-path/pci-{gpu.sysfs_bus_id}-{suffix}"
            try:
                links[link] = os.readlink(in_root(walk.dev_root, link))
            except OSError:
                continue
    return nodes, drm, links


def find_driver_files(
    machine: Machine,
    driver_root: str = "/",
    dev_root: str | None = None,
    *,
    host_root: str = "/",
    library_search_paths: Sequence[str] = (),
    config_search_paths: Sequence[str] = (),
    placeholder_nodes: Mapping[str, tuple[int, int]] | None = None,
    explicit_libraries: bool = False,
    ipc_sockets: bool = True,
) -> DriverFiles:
    """Find what a spec for `machine` injects, under `driver_root` and `dev_root`.

    `dev_root` defaults to the driver root. `library_search_paths` (absolute host paths)
    replace the standard library directories and the ld cache. `placeholder_nodes` maps
    paths relative to the dev root to (major, minor) for the simulator's placeholder
    nodes. `explicit_libraries` and `ipc_sockets` are the feature flags
    `enable-explicit-driver-libraries` and (negated) `disable-ipc-discoverer`.

    Raises DriverFilesError when the driver version is unknown or no library of that
    version exists: a spec without the driver's libraries would be useless.
    """
    driver_root = os.path.abspath(driver_root)
    dev_root = os.path.abspath(dev_root) if dev_root else driver_root
    walk = RootWalk(driver_root, dev_root, host_root, placeholder_nodes or {})
    search = [os.path.abspath(p) for p in library_search_paths]
    version = _driver_version(walk, machine.driver_version, search)
    lib_dirs = _lib_dirs(walk, version, search)
    graphics, xorg = _graphics(walk, version, lib_dirs, search)
    mig_minors = read_mig_minors(walk.host_root)
    nodes, drm, links = _device_nodes(walk, machine, mig_minors)
    return DriverFiles(
        driver_root=driver_root,
        dev_root=dev_root,
        version=version,
        lib_dirs=lib_dirs,
        libraries=_libraries(walk, version, lib_dirs, explicit_libraries),
        graphics_libraries=graphics,
        xorg_libraries=xorg,
        configs=_configs(walk, config_search_paths),
        firmware=_firmware(walk, version),
        binaries=_binaries(walk),
        ipc_sockets=_ipc_sockets(walk) if ipc_sockets else (),
        device_nodes=nodes,
        drm_entries=drm,
        by_path_links=links,
        mig_minors=mig_minors,
    )
