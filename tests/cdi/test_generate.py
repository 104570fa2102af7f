"""The pure generator: machine + driver files + options -> spec (docs/cdi.md#generate).

`DriverFiles` are built by hand here (the generator reads no disk), so each case states
exactly what the host has. Matrix: device entries (full GPUs, MIG devices, MIG-enabled
parents with and without the plugin's option, naming strategies), device node fields
and `additionalGids`, DRM nodes and by-path links, hooks (order, arguments, enable and
disable, `nvidia-ctk` form), mounts and their options, environment, simplify and the
merged `all`, the minimum version, errors, determinism, and one whole spec compared
with the toolkit's golden expectation.
"""

from __future__ import annotations

import gpu_builders as gb
import pytest

from cdi.driverfiles import DeviceNodeInfo, DriverFiles, FileMount, Library
from cdi.encode import to_yaml
from cdi.errors import GenerateError
from cdi.generate import (
    GenerateOptions,
    add_simplified,
    generate_spec,
    merged_device,
    select_devices,
    simplify,
)
from cdi.spec import ContainerEdits, Device, DeviceNode, Hook, Mount, Spec

LIB = "/usr/lib/x86_64-linux-gnu"
V = "550.54.15"
HOOK = "/usr/bin/nvidia-cdi-hook"
RO = ("ro", "nosuid", "nodev", "rbind", "rprivate")


def node(path: str, major: int = 195, minor: int = 0, mode: int = 0o666, gid: int = 0):  # type: ignore[no-untyped-def]
    return path, DeviceNodeInfo(path, path, major, minor, mode, gid)


def lib(name: str, soname: str | None = None, links: tuple[str, ...] = ()) -> Library:
    path = f"{LIB}/{name}"
    return Library(path, path, soname, frozenset(links))


def driver_files(*nodes: tuple[str, DeviceNodeInfo], **changes: object) -> DriverFiles:
    base = DriverFiles(
        driver_root="/",
        dev_root="/",
        version=V,
        lib_dirs=(LIB,),
        libraries=(lib(f"libcuda.so.{V}"),),
        device_nodes=dict(nodes) if nodes else dict([node("/dev/nvidiactl", minor=255)]),
    )
    return base._replace(**changes)


def gpu_nodes(count: int) -> list[tuple[str, DeviceNodeInfo]]:
    return [node("/dev/nvidiactl", minor=255)] + [
        node(f"/dev/nvidia{i}", minor=i) for i in range(count)
    ]


def options(**changes: object) -> GenerateOptions:
    return GenerateOptions(hook_path=HOOK)._replace(**changes)


def names(spec: Spec) -> list[str]:
    return [d.name for d in spec.devices]


def device(spec: Spec, name: str) -> ContainerEdits:
    return next(d.container_edits for d in spec.devices if d.name == name)


def hook(subcommand: str, *args: str, path: str = HOOK) -> Hook:
    return Hook(
        "createContainer", path, ("nvidia-cdi-hook", subcommand, *args), ("NVIDIA_CTK_DEBUG=false",)
    )


# --- device entries ---


def test_one_entry_per_gpu_and_strategy_then_all() -> None:
    machine = gb.machine(gb.gpu(0), gb.gpu(1))
    spec = generate_spec(machine, driver_files(*gpu_nodes(2)), options())
    assert names(spec) == ["0", "1", machine.gpus[0].uuid, machine.gpus[1].uuid, "all"]
    assert device(spec, "1").device_nodes == (
        DeviceNode("/dev/nvidia1", major=195, minor=1, file_mode=0o666, permissions="rwm"),
    )
    assert device(spec, machine.gpus[1].uuid) == device(spec, "1")
    assert [n.path for n in device(spec, "all").device_nodes] == ["/dev/nvidia0", "/dev/nvidia1"]


@pytest.mark.parametrize(
    ("strategies", "expected", "version"),
    [
        pytest.param(("index",), ["0", "0:0", "0:1", "all"], "0.5.0", id="index"),
        pytest.param(
            ("type-index",), ["all", "gpu0", "mig0:0", "mig0:1"], "0.3.0", id="type-index-0.3.0"
        ),
        pytest.param(("uuid", "type-index"), None, "0.3.0", id="uuid-and-type-index"),
    ],
)
def test_naming_strategies(
    strategies: tuple[str, ...], expected: list[str] | None, version: str
) -> None:
    machine = gb.machine(gb.gpu(0, migs=("3g.20gb", "1g.5gb")))
    spec = generate_spec(
        machine,
        driver_files(*gpu_nodes(1)),
        options(device_name_strategies=strategies, full_gpus_for_mig_enabled=True),
    )
    if expected is not None:
        assert names(spec) == expected
    else:
        assert len(spec.devices) == 2 * 3 + 1
    assert spec.version == version


def test_mig_enabled_gpu_has_only_mig_entries() -> None:
    """nvidia-ctk: no full-GPU entry for a GPU whose MIG mode is enabled."""
    machine = gb.machine(gb.gpu(0, migs=("3g.20gb", "1g.5gb")), gb.gpu(1))
    spec = generate_spec(
        machine, driver_files(*gpu_nodes(2)), options(device_name_strategies=("index",))
    )
    assert names(spec) == ["0:0", "0:1", "1", "all"]


def test_plugin_option_adds_mig_enabled_parents() -> None:
    """The plugin's mig-strategy none advertises MIG-enabled GPUs whole (docs/deviceplugin.md)."""
    machine = gb.machine(gb.gpu(0, migs=("1g.5gb",)))
    spec = generate_spec(
        machine,
        driver_files(*gpu_nodes(1)),
        options(
            device_name_strategies=("uuid",), full_gpus_for_mig_enabled=True, no_all_device=True
        ),
    )
    assert names(spec) == [machine.gpus[0].uuid, machine.gpus[0].mig_devices[0].uuid]
    assert [n.path for n in device(spec, machine.gpus[0].uuid).device_nodes] == ["/dev/nvidia0"]


def test_mig_device_nodes_from_capability_minors() -> None:
    machine = gb.machine(gb.gpu(0, migs=("3g.20gb", "1g.5gb")))
    files = driver_files(
        *gpu_nodes(1),
        node("/dev/nvidia-caps/nvidia-cap21", 508, 21, 0o400),
        node("/dev/nvidia-caps/nvidia-cap22", 508, 22, 0o400),
        node("/dev/nvidia-caps/nvidia-cap30", 508, 30, 0o400),
        node("/dev/nvidia-caps/nvidia-cap31", 508, 31, 0o400),
        mig_minors={
            "gpu0/gi0/access": 21,
            "gpu0/gi0/ci0/access": 22,
            "gpu0/gi1/access": 30,
            "gpu0/gi1/ci0/access": 31,
        },
    )
    spec = generate_spec(machine, files, options(device_name_strategies=("index",)))
    assert [n.path for n in device(spec, "0:1").device_nodes] == [
        "/dev/nvidia0",
        "/dev/nvidia-caps/nvidia-cap30",
        "/dev/nvidia-caps/nvidia-cap31",
    ]
    cap = device(spec, "0:1").device_nodes[1]
    assert (cap.major, cap.minor, cap.file_mode, cap.gid) == (508, 30, 0o400, None)
    assert [n.path for n in device(spec, "all").device_nodes] == [
        "/dev/nvidia0",
        "/dev/nvidia-caps/nvidia-cap21",
        "/dev/nvidia-caps/nvidia-cap22",
        "/dev/nvidia-caps/nvidia-cap30",
        "/dev/nvidia-caps/nvidia-cap31",
    ]


# --- DRM nodes, by-path links and additionalGids ---


def drm_files(mode: int = 0o660, gid: int = 107, **changes: object) -> DriverFiles:
    bus = gb.gpu(0).sysfs_bus_id
    return driver_files(
        *gpu_nodes(1),
        node("/dev/dri/card1", 226, 1, mode, 44),
        node("/dev/dri/renderD128", 226, 128, mode, gid),
        drm_entries={bus: ("card1", "controlD64", "renderD128")},
        by_path_links={
            f"/dev/dri/by-path/pci-{bus}-card": "../card1",
            f"/dev/dri/by-path/pci-{bus}-render": "../renderD999",  # not this GPU's node
        },
        **changes,
    )


def test_drm_nodes_by_path_hook_and_additional_gids() -> None:
    machine = gb.machine(gb.gpu(0))
    spec = generate_spec(machine, drm_files(), options(device_name_strategies=("index",)))
    edits = device(spec, "0")
    assert [n.path for n in edits.device_nodes] == [
        "/dev/nvidia0",
        "/dev/dri/card1",
        "/dev/dri/renderD128",
    ]
    bus = machine.gpus[0].sysfs_bus_id
    assert edits.hooks == (
        hook("create-symlinks", "--link", f"../card1::/dev/dri/by-path/pci-{bus}-card"),
    )
    assert edits.additional_gids == (44, 107)  # not world read-write, gid != 0 (toolkit v1.20)
    assert spec.version == "0.7.0"


@pytest.mark.parametrize(
    ("files", "opts", "gids", "version"),
    [
        pytest.param(drm_files(mode=0o666), {}, (), "0.5.0", id="world-rw-needs-no-gid"),
        pytest.param(drm_files(gid=0, mode=0o600), {}, (44,), "0.7.0", id="gid-0-never-added"),
        pytest.param(
            drm_files(), {"no_additional_gids": True}, (), "0.5.0", id="feature-flag-for-podman-4"
        ),
    ],
)
def test_additional_gids_rules(files: DriverFiles, opts: dict, gids: tuple, version: str) -> None:  # type: ignore[type-arg]
    spec = generate_spec(
        gb.machine(gb.gpu(0)), files, options(device_name_strategies=("index",), **opts)
    )
    assert (device(spec, "0").additional_gids, spec.version) == (gids, version)


def test_mig_device_gets_drm_only_with_gfx_profile() -> None:
    machine = gb.machine(
        gb.gpu(0, migs=("1g.5gb", "1g.5gb"))._replace(
            mig_devices=(
                gb.mig("1g.5gb", 0, 0),
                gb.mig("1g.5gb", 1, 0)._replace(profile="1g.5gb+gfx"),
            ),
        )
    )
    spec = generate_spec(machine, drm_files(mode=0o666), options(device_name_strategies=("index",)))
    assert [n.path for n in device(spec, "0:0").device_nodes] == ["/dev/nvidia0"]
    assert [n.path for n in device(spec, "0:1").device_nodes] == [
        "/dev/nvidia0",
        "/dev/dri/card1",
        "/dev/dri/renderD128",
    ]
    assert device(spec, "0:0").hooks == () and len(device(spec, "0:1").hooks) == 1


# --- common edits: nodes, env, mounts, hooks ---


def full_files() -> DriverFiles:
    return driver_files(
        node("/dev/nvidiactl", minor=255),
        node("/dev/nvidia-uvm", 507, 0),
        node("/dev/nvidia-uvm-tools", 507, 1),
        node("/dev/nvidia-modeset", 195, 254),
        node("/dev/nvidia0"),
        lib_dirs=(LIB,),
        libraries=(
            lib(
                f"libEGL_nvidia.so.{V}",
                "libEGL_nvidia.so.0",
                ("libEGL_nvidia.so.0", "libEGL_nvidia.so"),
            ),
            lib(f"libGLX_nvidia.so.{V}", "libGLX_nvidia.so.0"),
            lib(f"libcuda.so.{V}", "libcuda.so.1", ("libcuda.so.1", "libcuda.so")),
            lib(f"libnvidia-opticalflow.so.{V}"),
            lib(f"libnvidia-glcore.so.{V}", f"libnvidia-glcore.so.{V}", ("libnvidia-glcore.so",)),
            Library(f"{LIB}/vdpau/libvdpau_nvidia.so.{V}", f"{LIB}/vdpau/libvdpau_nvidia.so.{V}"),
            lib("libnvidia-nvvm70.so.4"),
        ),
        graphics_libraries=(
            FileMount(f"{LIB}/libnvidia-egl-gbm.so.1.1.1", f"{LIB}/libnvidia-egl-gbm.so.1.1.1"),
            FileMount(f"{LIB}/libnvidia-allocator.so.{V}", f"{LIB}/libnvidia-allocator.so.{V}"),
            FileMount(
                f"{LIB}/libnvidia-vulkan-producer.so.{V}", f"{LIB}/libnvidia-vulkan-producer.so.{V}"
            ),
        ),
        xorg_libraries=(
            FileMount(
                f"{LIB}/nvidia/xorg/libglxserver_nvidia.so.{V}",
                f"{LIB}/nvidia/xorg/libglxserver_nvidia.so.{V}",
            ),
        ),
        configs=(
            FileMount("/etc/vulkan/icd.d/nvidia_icd.json", "/etc/vulkan/icd.d/nvidia_icd.json"),
        ),
        firmware=(
            FileMount(
                f"/lib/firmware/nvidia/{V}/gsp_ga10x.bin", f"/lib/firmware/nvidia/{V}/gsp_ga10x.bin"
            ),
        ),
        binaries=(FileMount("/usr/bin/nvidia-smi", "/usr/bin/nvidia-smi"),),
        ipc_sockets=(
            FileMount("/run/nvidia-persistenced/socket", "/run/nvidia-persistenced/socket"),
        ),
    )


def test_common_edits() -> None:
    spec = generate_spec(gb.machine(gb.gpu(0)), full_files(), options())
    common = spec.container_edits
    assert common.env == (f"NVIDIA_CTK_LIBCUDA_DIR={LIB}", "NVIDIA_VISIBLE_DEVICES=void")
    assert [n.path for n in common.device_nodes] == [
        "/dev/nvidia-modeset",
        "/dev/nvidia-uvm",
        "/dev/nvidia-uvm-tools",
        "/dev/nvidiactl",
    ]
    assert common.hooks == (
        hook(
            "create-symlinks",
            "--link",
            f"../libnvidia-allocator.so.1::{LIB}/gbm/nvidia-drm_gbm.so",
            "--link",
            f"libnvidia-vulkan-producer.so.{V}::{LIB}/libnvidia-vulkan-producer.so",
            "--link",
            f"libglxserver_nvidia.so.{V}::{LIB}/nvidia/xorg/libglxserver_nvidia.so",
        ),
        hook(
            "create-symlinks",
            "--link",
            f"libEGL_nvidia.so.{V}::{LIB}/libEGL_nvidia.so.0",
            "--link",
            f"libEGL_nvidia.so.0::{LIB}/libEGL_nvidia.so",
            "--link",
            f"libGLX_nvidia.so.{V}::{LIB}/libGLX_indirect.so.0",
            "--link",
            f"libcuda.so.1::{LIB}/libcuda.so",
            "--link",
            f"libcuda.so.{V}::{LIB}/libcuda.so.1",
            "--link",
            f"libnvidia-opticalflow.so.1::{LIB}/libnvidia-opticalflow.so",
            "--link",
            f"libnvidia-glcore.so.{V}::{LIB}/libnvidia-glcore.so",
        ),
        hook("enable-cuda-compat", f"--host-driver-version={V}"),
        hook("update-ldcache", "--folder", LIB, "--folder", f"{LIB}/vdpau"),
        hook("disable-device-node-modification"),
        hook("update-application-profile"),
    )
    mounts = {m.container_path: m for m in common.mounts}
    assert f"{LIB}/libnvidia-allocator.so.{V}" not in mounts  # symlink target only
    assert mounts["/run/nvidia-persistenced/socket"].options == (
        "nosuid",
        "nodev",
        "rbind",
        "rprivate",
        "noexec",
    )
    assert all(m.options == RO for p, m in mounts.items() if "socket" not in p)
    assert [m.container_path for m in common.mounts] == [
        "/run/nvidia-persistenced/socket",
        "/usr/bin/nvidia-smi",
        "/etc/vulkan/icd.d/nvidia_icd.json",
        f"{LIB}/libEGL_nvidia.so.{V}",
        f"{LIB}/libGLX_nvidia.so.{V}",
        f"{LIB}/libcuda.so.{V}",
        f"{LIB}/libnvidia-egl-gbm.so.1.1.1",
        f"{LIB}/libnvidia-glcore.so.{V}",
        f"{LIB}/libnvidia-nvvm70.so.4",
        f"{LIB}/libnvidia-opticalflow.so.{V}",
        f"{LIB}/libnvidia-vulkan-producer.so.{V}",
        f"/lib/firmware/nvidia/{V}/gsp_ga10x.bin",
        f"{LIB}/vdpau/libvdpau_nvidia.so.{V}",
        f"{LIB}/nvidia/xorg/libglxserver_nvidia.so.{V}",
    ]  # by the number of "/" then the path, as the toolkit sorts


@pytest.mark.parametrize(
    ("opts", "subcommands"),
    [
        pytest.param(
            {},
            [
                "create-symlinks",
                "enable-cuda-compat",
                "update-ldcache",
                "disable-device-node-modification",
                "update-application-profile",
            ],
            id="default",
        ),
        pytest.param({"disabled_hooks": frozenset({"all"})}, [], id="disable-all"),
        pytest.param(
            {"disabled_hooks": frozenset({"all"}), "enabled_hooks": frozenset({"update-ldcache"})},
            ["update-ldcache"],
            id="enable-beats-disable",
        ),
        pytest.param(
            {"disabled_hooks": frozenset({"create-symlinks", "enable-cuda-compat"})},
            ["update-ldcache", "disable-device-node-modification", "update-application-profile"],
            id="disable-two",
        ),
    ],
)
def test_hooks_enable_disable(opts: dict, subcommands: list[str]) -> None:  # type: ignore[type-arg]
    spec = generate_spec(gb.machine(gb.gpu(0)), driver_files(*gpu_nodes(1)), options(**opts))
    assert [h.args[1] for h in spec.container_edits.hooks] == subcommands


def test_chmod_hook_only_when_enabled() -> None:
    machine = gb.machine(gb.gpu(0))
    spec = generate_spec(
        machine,
        drm_files(mode=0o666),
        options(device_name_strategies=("index",), enabled_hooks=frozenset({"chmod"})),
    )
    assert device(spec, "0").hooks[-1] == hook("chmod", "--mode", "755", "--path", "/dev/dri")


def test_nvidia_ctk_hook_form_and_ldconfig_path() -> None:
    """Hook binary named nvidia-ctk: `[nvidia-ctk, hook, <subcommand>]`."""
    spec = generate_spec(
        gb.machine(gb.gpu(0)),
        driver_files(*gpu_nodes(1)),
        options(hook_path="/usr/local/bin/nvidia-ctk", ldconfig_path="/sbin/ldconfig.real"),
    )
    ldcache = next(h for h in spec.container_edits.hooks if "update-ldcache" in h.args)
    assert ldcache.path == "/usr/local/bin/nvidia-ctk"
    assert ldcache.args == (
        "nvidia-ctk",
        "hook",
        "update-ldcache",
        "--ldconfig-path",
        "/sbin/ldconfig.real",
        "--folder",
        LIB,
    )


def test_host_paths_under_a_driver_root() -> None:
    files = driver_files(
        (
            "/dev/nvidia0",
            DeviceNodeInfo("/dev/nvidia0", "/run/nvidia/driver/dev/nvidia0", 195, 0, 0o666, 0),
        ),
        driver_root="/run/nvidia/driver",
        libraries=(Library(f"/run/nvidia/driver{LIB}/libcuda.so.{V}", f"{LIB}/libcuda.so.{V}"),),
    )
    spec = generate_spec(
        gb.machine(gb.gpu(0)), files, options(device_name_strategies=("type-index",))
    )
    assert device(spec, "gpu0").device_nodes[0].host_path == "/run/nvidia/driver/dev/nvidia0"
    assert spec.container_edits.mounts[0] == Mount(
        f"/run/nvidia/driver{LIB}/libcuda.so.{V}", f"{LIB}/libcuda.so.{V}", RO
    )
    assert spec.version == "0.5.0"  # hostPath on a node


# --- simplify and `all` ---


def test_simplify_removes_common_entities_unless_device_would_be_empty() -> None:
    ctl = DeviceNode("/dev/nvidiactl")
    spec = Spec(
        "",
        "nvidia.com/gpu",
        (
            Device("b", ContainerEdits(device_nodes=(DeviceNode("/dev/nvidia0"), ctl, ctl))),
            Device("a", ContainerEdits(device_nodes=(ctl,), env=("X=1",))),
            Device("c", ContainerEdits(device_nodes=(ctl,))),
        ),
        ContainerEdits(device_nodes=(ctl,), env=("X=1", "X=1")),
    )
    out = simplify(spec)
    assert names(out) == ["a", "b", "c"]
    assert out.container_edits.env == ("X=1",)
    assert device(out, "a") == ContainerEdits(device_nodes=(ctl,), env=("X=1",))  # kept whole
    assert device(out, "b").device_nodes == (DeviceNode("/dev/nvidia0"),)
    assert device(out, "c").device_nodes == (ctl,)


def gpu_device_node(minor: int) -> DeviceNode:
    return DeviceNode(
        f"/dev/nvidia{minor}", major=195, minor=minor, file_mode=0o666, permissions="rwm"
    )


@pytest.mark.parametrize("chmod", [False, True])
def test_all_device_is_simplified(chmod: bool) -> None:
    """The merged `all` device holds every GPU's node once, in order, less what the spec's
    own edits already carry (nvidiactl); adding it changes no other part of the spec."""
    machine = gb.machine(gb.gpu(0, migs=("3g.20gb", "1g.5gb")), gb.gpu(1), gb.gpu(2))
    files = driver_files(
        *gpu_nodes(3), node("/dev/nvidia-caps/nvidia-cap1", 508, 1, mode=0o400, gid=44)
    )
    opts = options(enabled_hooks=frozenset({"chmod"}) if chmod else frozenset())
    without_all = generate_spec(machine, files, opts._replace(no_all_device=True))
    spec = generate_spec(machine, files, opts)
    assert spec.devices[-1] == Device(
        "all", ContainerEdits(device_nodes=tuple(gpu_device_node(i) for i in range(3)))
    )
    assert spec._replace(devices=spec.devices[:-1]) == without_all
    assert spec.container_edits.device_nodes == (
        DeviceNode("/dev/nvidiactl", major=195, minor=255, file_mode=0o666, permissions="rwm"),
    )
    assert spec.version == "0.5.0"


def test_adding_a_device_to_a_simplified_spec() -> None:
    """A device kept whole (all its entities are common ones) leaves them in the merged
    device, which simplify must drop again."""
    ctl, gpu = DeviceNode("/dev/nvidiactl"), DeviceNode("/dev/nvidia0")
    spec = simplify(
        Spec(
            "",
            "nvidia.com/gpu",
            (
                Device("b", ContainerEdits(device_nodes=(gpu,))),
                Device("a", ContainerEdits(device_nodes=(ctl,))),
            ),
            ContainerEdits(device_nodes=(ctl,)),
        )
    )
    merged = merged_device(spec.devices, "all")
    assert merged.container_edits.device_nodes == (ctl, gpu)
    added = add_simplified(spec, merged)
    assert added == Spec(
        "",
        "nvidia.com/gpu",
        (
            Device("a", ContainerEdits(device_nodes=(ctl,))),  # kept whole
            Device("all", ContainerEdits(device_nodes=(gpu,))),  # ctl dropped again
            Device("b", ContainerEdits(device_nodes=(gpu,))),
        ),
        ContainerEdits(device_nodes=(ctl,)),
    )
    assert simplify(added) == added


def test_no_all_device() -> None:
    spec = generate_spec(
        gb.machine(gb.gpu(0)), driver_files(*gpu_nodes(1)), options(no_all_device=True)
    )
    assert "all" not in names(spec)


# --- errors ---


@pytest.mark.parametrize(
    ("machine", "files", "opts", "message"),
    [
        pytest.param(
            gb.machine(gb.gpu(0), gb.gpu(1)),
            driver_files(*gpu_nodes(1)),
            {},
            'failed add device "1": invalid device, empty device edits'
            " (GPU 1 GPU-00000001-1111-2222-3333-444444444444: no device node under /)",
            id="gpu-node-missing",
        ),
        pytest.param(
            gb.machine(),
            driver_files(),
            {},
            "invalid spec, no devices: the machine has no GPU or MIG device to describe",
            id="no-gpus",
        ),
        pytest.param(
            gb.machine(gb.gpu(0, migs=())),
            driver_files(*gpu_nodes(1)),
            {},
            "invalid spec, no devices: the machine has no GPU or MIG device to describe",
            id="mig-enabled-without-mig-devices",
        ),
        pytest.param(
            gb.machine(gb.gpu(0)),
            driver_files(*gpu_nodes(1)),
            {"vendor": "n"},
            'vendor "n" has 1 character: CDI library <= v0.5 (podman 4.3) crashes on it',
            id="one-char-vendor",
        ),
        pytest.param(
            gb.machine(gb.gpu(0)),
            driver_files(*gpu_nodes(1)),
            {"device_class": "g!u"},
            "invalid class. invalid character '!' in name \"g!u\"",
            id="bad-class",
        ),
        pytest.param(
            gb.machine(gb.gpu(0)),
            driver_files(*gpu_nodes(1)),
            {"device_name_strategies": ()},
            "at least one device name strategy is required",
            id="no-strategy",
        ),
        pytest.param(
            gb.machine(gb.gpu(0)),
            driver_files(*gpu_nodes(1)),
            {"device_name_strategies": ("name",)},
            "invalid device name strategy: name",
            id="bad-strategy",
        ),
        pytest.param(
            gb.machine(gb.gpu(0)),
            driver_files(*gpu_nodes(1)),
            {"enabled_hooks": frozenset({"all"})},
            '"all" cannot be enabled: name the hooks to enable',
            id="enable-all",
        ),
    ],
)
def test_errors(machine, files: DriverFiles, opts: dict, message: str) -> None:  # type: ignore[no-untyped-def, type-arg]
    with pytest.raises(GenerateError) as err:
        generate_spec(machine, files, options(**opts))
    assert str(err.value) == message


# --- determinism, selection, golden ---


def test_same_machine_same_bytes() -> None:
    machine = gb.with_migs(gb.dgx_a100(), "3g.20gb", "2g.10gb", "1g.5gb", "1g.5gb")
    files = full_files()
    files = files._replace(device_nodes={**files.device_nodes, **dict(gpu_nodes(8))})
    first = to_yaml(generate_spec(machine, files, options()))
    assert first == to_yaml(generate_spec(machine, files, options()))
    reordered = files._replace(
        libraries=files.libraries,
        device_nodes=dict(reversed(list(files.device_nodes.items()))),
    )
    assert first == to_yaml(generate_spec(machine, reordered, options()))


def test_select_devices_recomputes_version() -> None:
    machine = gb.machine(gb.gpu(0))
    spec = generate_spec(
        machine,
        driver_files(*gpu_nodes(1)),
        options(device_name_strategies=("index", "type-index")),
    )
    assert spec.version == "0.5.0"
    kept = select_devices(spec, ["gpu0"])
    assert (names(kept), kept.version) == (["gpu0"], "0.3.0")
    with pytest.raises(GenerateError, match="no such devices in the spec: gpu9"):
        select_devices(spec, ["gpu9"])


def test_toolkit_golden_one_gpu() -> None:
    """The toolkit's own golden test: one GPU, driver root R, 999.88.77."""
    root, v, lib_dir = "/R", "999.88.77", "/lib/x86_64-linux-gnu"
    files = DriverFiles(
        driver_root=root,
        dev_root=root,
        version=v,
        lib_dirs=(lib_dir,),
        libraries=(
            Library(f"{root}{lib_dir}/libcuda.so.{v}", f"{lib_dir}/libcuda.so.{v}"),
            Library(
                f"{root}{lib_dir}/vdpau/libvdpau_nvidia.so.{v}",
                f"{lib_dir}/vdpau/libvdpau_nvidia.so.{v}",
            ),
        ),
        device_nodes={
            "/dev/nvidia0": DeviceNodeInfo("/dev/nvidia0", f"{root}/dev/nvidia0", 195, 0, 0o666, 0),
            "/dev/nvidiactl": DeviceNodeInfo(
                "/dev/nvidiactl", f"{root}/dev/nvidiactl", 195, 255, 0o666, 0
            ),
        },
    )
    spec = generate_spec(
        gb.machine(gb.gpu(0), driver=v), files, options(device_name_strategies=("index",))
    )
    gpu0 = {
        "path": "/dev/nvidia0",
        "hostPath": f"{root}/dev/nvidia0",
        "major": 195,
        "fileMode": 438,
        "permissions": "rwm",
    }
    env = ["NVIDIA_CTK_DEBUG=false"]
    assert spec.to_dict() == {
        "cdiVersion": "0.5.0",
        "kind": "nvidia.com/gpu",
        "devices": [
            {"name": "0", "containerEdits": {"deviceNodes": [gpu0]}},
            {"name": "all", "containerEdits": {"deviceNodes": [gpu0]}},
        ],
        "containerEdits": {
            "env": [f"NVIDIA_CTK_LIBCUDA_DIR={lib_dir}", "NVIDIA_VISIBLE_DEVICES=void"],
            "deviceNodes": [
                {
                    "path": "/dev/nvidiactl",
                    "hostPath": f"{root}/dev/nvidiactl",
                    "major": 195,
                    "minor": 255,
                    "fileMode": 438,
                    "permissions": "rwm",
                }
            ],
            "hooks": [
                {
                    "hookName": "createContainer",
                    "path": HOOK,
                    "args": [
                        "nvidia-cdi-hook",
                        "create-symlinks",
                        "--link",
                        f"libcuda.so.1::{lib_dir}/libcuda.so",
                    ],
                    "env": env,
                },
                {
                    "hookName": "createContainer",
                    "path": HOOK,
                    "args": ["nvidia-cdi-hook", "enable-cuda-compat", f"--host-driver-version={v}"],
                    "env": env,
                },
                {
                    "hookName": "createContainer",
                    "path": HOOK,
                    "args": [
                        "nvidia-cdi-hook",
                        "update-ldcache",
                        "--folder",
                        lib_dir,
                        "--folder",
                        f"{lib_dir}/vdpau",
                    ],
                    "env": env,
                },
                {
                    "hookName": "createContainer",
                    "path": HOOK,
                    "args": ["nvidia-cdi-hook", "disable-device-node-modification"],
                    "env": env,
                },
                {
                    "hookName": "createContainer",
                    "path": HOOK,
                    "args": ["nvidia-cdi-hook", "update-application-profile"],
                    "env": env,
                },
            ],
            "mounts": [
                {
                    "hostPath": f"{root}{lib_dir}/libcuda.so.{v}",
                    "containerPath": f"{lib_dir}/libcuda.so.{v}",
                    "options": list(RO),
                },
                {
                    "hostPath": f"{root}{lib_dir}/vdpau/libvdpau_nvidia.so.{v}",
                    "containerPath": f"{lib_dir}/vdpau/libvdpau_nvidia.so.{v}",
                    "options": list(RO),
                },
            ],
        },
    }
