"""`cdi.transform`: the root transform as a pure function (docs/cdi.md#transform-root).

Matrix: `change_root` over the path shapes (under, equal, outside, a sibling sharing the
prefix, a trailing slash, `/` and empty roots, relative paths); `transform_root` per edit
kind and side (`host`, `container`): device-node `path` / `hostPath` (an empty one),
mount paths, hook paths and args by lifecycle, `a::b` args; the same edits at spec and
device level; no-ops; the version kept, or raised only when the content needs it.
Left out on purpose: reading and writing (test_transform_cli.py).
"""

from __future__ import annotations

import pytest

from cdi.spec import ContainerEdits, Device, DeviceNode, Hook, Mount, Spec
from cdi.transform import change_root, clean_root, name_host_roots, transform_root

DRIVER = "/run/nvidia/driver"


@pytest.mark.parametrize(
    ("path", "root", "target", "expected"),
    [
        pytest.param(f"{DRIVER}/lib/libcuda.so", DRIVER, "/", "/lib/libcuda.so", id="under"),
        pytest.param(DRIVER, DRIVER, "/host", "/host", id="equal-to-root"),
        pytest.param("/usr/lib/libcuda.so", DRIVER, "/host", "/usr/lib/libcuda.so", id="outside"),
        pytest.param(f"{DRIVER}-backup/lib.so", DRIVER, "/", f"{DRIVER}-backup/lib.so",
                     id="sibling-sharing-the-prefix"),
        pytest.param(f"{DRIVER}foo", DRIVER, "/", f"{DRIVER}foo", id="partial-component"),
        pytest.param(f"{DRIVER}/lib/x.so", f"{DRIVER}/", "/host", "/host/lib/x.so",
                     id="root-with-trailing-slash"),
        pytest.param("/usr/lib/x.so", "/", "/host", "/host/usr/lib/x.so", id="root-slash"),
        pytest.param("/usr/lib/x.so", "", "/host", "/host/usr/lib/x.so", id="empty-from-is-slash"),
        pytest.param(f"{DRIVER}/lib/x.so", DRIVER, "", "/lib/x.so", id="empty-to-is-slash"),
        pytest.param(DRIVER, DRIVER, "", "/", id="root-itself-to-empty"),
        pytest.param("nvidia-cdi-hook", "/", "/host", "nvidia-cdi-hook", id="relative-untouched"),
        pytest.param("--folder", "", "/host", "--folder", id="flag-untouched"),
        pytest.param(f"{DRIVER}/lib/", DRIVER, "/host/", "/host/lib", id="moved-path-cleaned"),
        pytest.param(f"{DRIVER}/lib//x", "/usr", "/host", f"{DRIVER}/lib//x",
                     id="unmoved-path-kept-as-written"),
    ],
)  # fmt: skip
def test_change_root(path: str, root: str, target: str, expected: str) -> None:
    assert change_root(path, clean_root(root), clean_root(target)) == expected


def _hook(name: str, path: str, *args: str) -> Hook:
    return Hook(name, path, ("hook", *args), ("NVIDIA_CTK_DEBUG=false",))


R = DRIVER  # shorter table rows
LINK = f"libcuda.so.1::{R}/usr/lib/libcuda.so"
LINK2 = f"{R}/a::{R}/b"

# (relative_to, edits in, edits out) with from = DRIVER, to = "/"
CASES = [
    pytest.param(
        "host",
        ContainerEdits(device_nodes=(DeviceNode("/dev/nvidia0", f"{R}/dev/nvidia0"),)),
        ContainerEdits(device_nodes=(DeviceNode("/dev/nvidia0", "/dev/nvidia0"),)),
        id="host-node-hostPath",
    ),
    pytest.param(
        "host",
        ContainerEdits(device_nodes=(DeviceNode(f"{R}/dev/nvidia0"),)),
        ContainerEdits(device_nodes=(DeviceNode(f"{R}/dev/nvidia0", "/dev/nvidia0"),)),
        id="host-node-empty-hostPath-first-set-to-path",
    ),
    pytest.param(
        "host",
        ContainerEdits(device_nodes=(DeviceNode("/dev/nvidia0", type="c", major=195),)),
        ContainerEdits(device_nodes=(DeviceNode("/dev/nvidia0", type="c", major=195),)),
        id="host-node-empty-hostPath-outside-root-stays-empty",
    ),
    pytest.param(
        "host",
        ContainerEdits(mounts=(Mount(f"{R}/lib/x.so", f"{R}/lib/x.so", ("ro",)),)),
        ContainerEdits(mounts=(Mount("/lib/x.so", f"{R}/lib/x.so", ("ro",)),)),
        id="host-mount-hostPath-only",
    ),
    pytest.param(
        "host",
        ContainerEdits(
            hooks=(
                _hook("createContainer", f"{R}/bin/h", "--link", LINK, LINK2),
                _hook("startContainer", f"{R}/bin/h", f"{R}/x"),
                _hook("prestart", f"{R}/bin/h", "--folder", f"{R}/lib", LINK2),
                _hook("poststop", "/usr/bin/h", f"{R}/x"),
            )
        ),
        ContainerEdits(
            hooks=(
                _hook("createContainer", "/bin/h", "--link", LINK, LINK2),
                _hook("startContainer", f"{R}/bin/h", f"{R}/x"),
                _hook("prestart", "/bin/h", "--folder", "/lib", "/a::/b"),
                _hook("poststop", "/usr/bin/h", "/x"),
            )
        ),
        id="host-hooks-by-lifecycle",
    ),
    pytest.param(
        "container",
        ContainerEdits(device_nodes=(DeviceNode(f"{R}/dev/nvidia0", f"{R}/dev/nvidia0"),)),
        ContainerEdits(device_nodes=(DeviceNode("/dev/nvidia0", f"{R}/dev/nvidia0"),)),
        id="container-node-path",
    ),
    pytest.param(
        "container",
        ContainerEdits(device_nodes=(DeviceNode(f"{R}/dev/nvidia0"),)),
        ContainerEdits(device_nodes=(DeviceNode("/dev/nvidia0", f"{R}/dev/nvidia0"),)),
        id="container-node-empty-hostPath-keeps-the-host-side",
    ),
    pytest.param(
        "container",
        ContainerEdits(mounts=(Mount(f"{R}/lib/x.so", f"{R}/lib/x.so"),)),
        ContainerEdits(mounts=(Mount(f"{R}/lib/x.so", "/lib/x.so"),)),
        id="container-mount-containerPath-only",
    ),
    pytest.param(
        "container",
        ContainerEdits(
            hooks=(
                _hook("createContainer", f"{R}/bin/h", "--link", LINK, LINK2),
                _hook("startContainer", f"{R}/bin/h", f"{R}/x"),
                _hook("prestart", f"{R}/bin/h", f"{R}/lib", LINK2),
                _hook("createRuntime", f"{R}/bin/h", f"{R}/x"),
            )
        ),
        ContainerEdits(
            hooks=(
                _hook(
                    "createContainer",
                    f"{R}/bin/h",
                    "--link",
                    "libcuda.so.1::/usr/lib/libcuda.so",
                    "/a::/b",
                ),
                _hook("startContainer", "/bin/h", "/x"),
                _hook("prestart", f"{R}/bin/h", f"{R}/lib", LINK2),
                _hook("createRuntime", f"{R}/bin/h", f"{R}/x"),
            )
        ),
        id="container-hooks-by-lifecycle",
    ),
    pytest.param(
        "host",
        ContainerEdits(env=(f"LIBDIR={R}/lib",), additional_gids=(44,)),
        ContainerEdits(env=(f"LIBDIR={R}/lib",), additional_gids=(44,)),
        id="env-and-gids-untouched",
    ),
    pytest.param(
        "host",
        ContainerEdits(hooks=(_hook("prestart", "/bin/h", f"{R}-backup/x::{R}x"),)),
        ContainerEdits(hooks=(_hook("prestart", "/bin/h", f"{R}-backup/x::{R}x"),)),
        id="args-match-on-component-boundary",
    ),
]


def _spec(edits: ContainerEdits, version: str = "0.7.0") -> Spec:
    """The same edits at spec level and in two devices, so every place is walked."""
    devices = (Device("0", edits), Device("all", edits))
    return Spec(version, "nvidia.com/gpu", devices, edits, annotations=(("k", "v"),))


@pytest.mark.parametrize(("relative_to", "edits", "expected"), CASES)
def test_transform_root(relative_to: str, edits: ContainerEdits, expected: ContainerEdits) -> None:
    out = transform_root(_spec(edits), DRIVER, "/", relative_to)
    assert out == _spec(expected)


@pytest.mark.parametrize(
    ("from_", "to"),
    [
        pytest.param(DRIVER, DRIVER, id="same"),
        pytest.param(f"{DRIVER}/", DRIVER, id="same-but-a-trailing-slash"),
        pytest.param("", "", id="both-empty-the-defaults"),
        pytest.param("", "/", id="empty-and-slash"),
    ],
)
@pytest.mark.parametrize("relative_to", ["host", "container"])
def test_equal_roots_are_a_no_op(from_: str, to: str, relative_to: str) -> None:
    spec = _spec(
        ContainerEdits(
            device_nodes=(DeviceNode(f"{R}/dev/nvidia0"),),
            hooks=(_hook("prestart", f"{R}/h", f"{R}/x"),),
            mounts=(Mount(f"{R}/a//b/", f"{R}/a"),),
        ),
        version="0.3.0",
    )
    assert transform_root(spec, from_, to, relative_to) is spec


def test_version_is_kept() -> None:
    """A higher declared version than needed stays: no simplification, as upstream."""
    spec = _spec(ContainerEdits(mounts=(Mount(f"{R}/x", "/x"),)), version="1.0.0")
    out = transform_root(spec, DRIVER, "/host")
    assert out.version == "1.0.0"
    assert out.container_edits.mounts == (Mount("/host/x", "/x"),)


def test_version_raised_only_when_a_hostPath_appears() -> None:
    """A 0.3.0 spec whose node gains a hostPath needs 0.5.0: no 0.3.0 reader knows it."""
    nodes = ContainerEdits(device_nodes=(DeviceNode("/dev/nvidia0"),))
    spec = Spec("0.3.0", "nvidia.com/gpu", (Device("gpu0", nodes),))
    moved = transform_root(spec, "/", "/host")
    assert moved.version == "0.5.0"
    assert moved.devices[0].container_edits.device_nodes == (
        DeviceNode("/dev/nvidia0", "/host/dev/nvidia0"),
    )
    assert transform_root(spec, "/elsewhere", "/host").version == "0.3.0"


def test_bad_relative_to() -> None:
    with pytest.raises(ValueError, match="invalid relative_to 'pod': want host or container"):
        transform_root(_spec(ContainerEdits(env=("A=b",))), DRIVER, "/", "pod")


# --- name_host_roots: a spec generated from roots mounted in a container ---


def _one_device(*edits: ContainerEdits, version: str = "0.5.0") -> Spec:
    devices = tuple(Device(f"gpu{i}", e) for i, e in enumerate(edits))
    return Spec(version, "nvidia.com/gpu", devices, ContainerEdits())


def _at(path: str, host_path: str = "") -> ContainerEdits:
    return ContainerEdits(device_nodes=(DeviceNode(path, host_path),))


LIB = "/usr/lib/x86_64-linux-gnu/libcuda.so.550.54.15"


@pytest.mark.parametrize(
    ("moves", "edits", "expected"),
    [
        pytest.param([("/driver-root", "/")], _at("/dev/nvidia0", "/driver-root/dev/nvidia0"),
                     _at("/dev/nvidia0"), id="host-driver-hostpath-left-out"),
        pytest.param([("/driver-root", DRIVER)], _at("/dev/nvidia0", "/driver-root/dev/nvidia0"),
                     _at("/dev/nvidia0", f"{DRIVER}/dev/nvidia0"), id="driver-container"),
        pytest.param([("/driver-root", "/")],
                     ContainerEdits(mounts=(Mount(f"/driver-root{LIB}", LIB),)),
                     ContainerEdits(mounts=(Mount(LIB, LIB),)), id="mount"),
        pytest.param([("/driver-root", DRIVER), ("/dev-root", "/")],
                     _at("/dev/nvidia0", "/dev-root/dev/nvidia0"), _at("/dev/nvidia0"),
                     id="own-dev-root"),
        pytest.param([("/mnt", DRIVER), ("/mnt/dev-root", "/")],
                     _at("/dev/nvidia0", "/mnt/dev-root/dev/nvidia0"), _at("/dev/nvidia0"),
                     id="deeper-root-moves-first"),
        pytest.param([("/mnt/dev-root", "/"), ("/mnt", DRIVER)],
                     ContainerEdits(mounts=(Mount(f"/mnt{LIB}", LIB),)),
                     ContainerEdits(mounts=(Mount(f"{DRIVER}{LIB}", LIB),)),
                     id="order-of-moves-irrelevant"),
        pytest.param([("/driver-root", "/")], _at("/dev/nvidia0", "/elsewhere/nvidia0"),
                     _at("/dev/nvidia0", "/elsewhere/nvidia0"), id="outside-kept"),
    ],
)  # fmt: skip
def test_name_host_roots(
    moves: list[tuple[str, str]], edits: ContainerEdits, expected: ContainerEdits
) -> None:
    result = name_host_roots(_one_device(edits), moves)
    assert result.devices[0].container_edits == expected


def test_name_host_roots_lowers_the_version_a_host_path_needed() -> None:
    """Named as on the host, a node needs no hostPath: 0.5.0 was only for that."""
    mounted = Spec(
        "0.5.0",
        "nvidia.com/gpu",
        (Device("gpu0", _at("/dev/nvidia0", "/driver-root/dev/nvidia0")),),
        ContainerEdits(),
    )
    assert name_host_roots(mounted, [("/driver-root", "/")]).version == "0.3.0"
