"""The minimum cdiVersion: one row per feature, as the CDI library's own version table.

Each case is a spec with exactly one feature beyond a 0.3.0 spec, the version it forces
and the field path `validate` reports for it. Fields that do not raise the minimum
(major, minor, fileMode, permissions, uid, gid, hook env and timeout) have rows too.
"""

from __future__ import annotations

import pytest

from cdi.spec import ContainerEdits, Device, DeviceNode, Hook, IntelRdt, Mount, NetDevice, Spec
from cdi.version import KNOWN_VERSIONS, minimum_version, parse_version, required_by

NODE = DeviceNode(path="/dev/nvidia0")


def spec_with(
    device: ContainerEdits | None = None,
    common: ContainerEdits | None = None,
    name: str = "gpu0",
    kind: str = "nvidia.com/gpu",
    annotations: tuple[tuple[str, str], ...] = (),
    device_annotations: tuple[tuple[str, str], ...] = (),
) -> Spec:
    edits = device or ContainerEdits(device_nodes=(NODE,))
    return Spec(
        "",
        kind,
        (Device(name, edits, device_annotations),),
        common or ContainerEdits(),
        annotations,
    )


HOOK = Hook("createContainer", "/usr/bin/nvidia-cdi-hook", ("nvidia-cdi-hook", "x"))


@pytest.mark.parametrize(
    ("spec", "version", "path"),
    [
        pytest.param(spec_with(), "0.3.0", None, id="v0.3.0-floor"),
        pytest.param(
            spec_with(ContainerEdits(mounts=(Mount("/a", "/a", ("bind",), "bind"),))),
            "0.4.0",
            "devices[0].containerEdits.mounts[0].type",
            id="v0.4.0-mount-type",
        ),
        pytest.param(
            spec_with(ContainerEdits(device_nodes=(NODE._replace(host_path="/r/dev/nvidia0"),))),
            "0.5.0",
            "devices[0].containerEdits.deviceNodes[0].hostPath",
            id="v0.5.0-device-node-host-path",
        ),
        pytest.param(
            spec_with(common=ContainerEdits(device_nodes=(NODE._replace(host_path="/r/x"),))),
            "0.5.0",
            "containerEdits.deviceNodes[0].hostPath",
            id="v0.5.0-common-host-path",
        ),
        pytest.param(spec_with(name="0"), "0.5.0", "devices[0].name", id="v0.5.0-digit-name"),
        pytest.param(spec_with(name="0:1"), "0.5.0", "devices[0].name", id="v0.5.0-mig-index"),
        pytest.param(spec_with(name="GPU-1"), "0.3.0", None, id="v0.3.0-letter-name"),
        pytest.param(
            spec_with(annotations=(("a", "b"),)), "0.6.0", "annotations", id="v0.6.0-annotations"
        ),
        pytest.param(
            spec_with(device_annotations=(("a", "b"),)),
            "0.6.0",
            "devices[0].annotations",
            id="v0.6.0-device-annotations",
        ),
        pytest.param(spec_with(kind="nvidia.com/gpu.mig"), "0.6.0", "kind", id="v0.6.0-class-dot"),
        pytest.param(
            spec_with(ContainerEdits(device_nodes=(NODE,), additional_gids=(44,))),
            "0.7.0",
            "devices[0].containerEdits.additionalGids",
            id="v0.7.0-additional-gids",
        ),
        pytest.param(
            spec_with(common=ContainerEdits(additional_gids=(44,))),
            "0.7.0",
            "containerEdits.additionalGids",
            id="v0.7.0-common-additional-gids",
        ),
        pytest.param(
            spec_with(ContainerEdits(intel_rdt=IntelRdt(clos_id="x"))),
            "0.7.0",
            "devices[0].containerEdits.intelRdt",
            id="v0.7.0-intel-rdt",
        ),
        pytest.param(
            spec_with(ContainerEdits(net_devices=(NetDevice("eth0", "net0"),))),
            "1.1.0",
            "devices[0].containerEdits.netDevices",
            id="v1.1.0-net-devices",
        ),
        pytest.param(
            spec_with(ContainerEdits(intel_rdt=IntelRdt(schemata=("L3:0=f",)))),
            "1.1.0",
            "devices[0].containerEdits.intelRdt.schemata",
            id="v1.1.0-rdt-schemata",
        ),
        pytest.param(
            spec_with(ContainerEdits(intel_rdt=IntelRdt(enable_monitoring=True))),
            "1.1.0",
            "devices[0].containerEdits.intelRdt.enableMonitoring",
            id="v1.1.0-rdt-monitoring",
        ),
        pytest.param(
            spec_with(
                ContainerEdits(
                    device_nodes=(
                        DeviceNode(
                            "/dev/x",
                            type="c",
                            major=195,
                            minor=1,
                            file_mode=0o666,
                            permissions="rw",
                            uid=0,
                            gid=44,
                        ),
                    )
                )
            ),
            "0.3.0",
            None,
            id="v0.3.0-node-fields-do-not-count",
        ),
        pytest.param(
            spec_with(ContainerEdits(hooks=(HOOK._replace(env=("A=b",), timeout=5),))),
            "0.3.0",
            None,
            id="v0.3.0-hook-env-timeout-do-not-count",
        ),
    ],
)
def test_minimum_version(spec: Spec, version: str, path: str | None) -> None:
    assert minimum_version(spec) == version
    found = required_by(spec)
    assert (found[1] if found else None) == path


def test_newest_feature_wins() -> None:
    spec = spec_with(
        ContainerEdits(device_nodes=(NODE._replace(host_path="/r/x"),), additional_gids=(44,)),
        name="0",
    )
    assert minimum_version(spec) == "0.7.0"


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        pytest.param("0.5.0", (0, 5, 0), id="known"),
        pytest.param("1.1.0", (1, 1, 0), id="latest"),
        pytest.param("v0.5.0", None, id="v-prefix-breaks-podman-4.3"),
        pytest.param("0.9.0", None, id="unknown"),
        pytest.param("", None, id="empty"),
    ],
)
def test_parse_version(text: str, parsed: tuple[int, ...] | None) -> None:
    assert parse_version(text) == parsed


def test_versions_are_ordered() -> None:
    parsed = [parse_version(v) for v in KNOWN_VERSIONS]
    assert parsed == sorted(parsed)  # type: ignore[type-var]
