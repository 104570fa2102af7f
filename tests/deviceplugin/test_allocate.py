"""Allocate answers (docs/deviceplugin.md#allocate), pure.

Matrix: each device-list strategy alone and combined, upstream's worked example; device
ID strategy uuid / index for GPUs, MIG devices and replicas (request order kept,
duplicates dropped); --pass-device-specs with and without control nodes, under a dev
root; the annotation prefix and its fresh UUID per container; IMEX channels; MPS;
gdrcopy/gds/mofed; validation errors with upstream's exact text.
"""

from __future__ import annotations

import re

import pytest

from deviceplugin.allocate import AllocateOptions, Allocator
from deviceplugin.devices import Device, Resource
from deviceplugin.errors import RequestError
from deviceplugin.v1beta1 import api_pb2

GPU_A, GPU_B = (
    "GPU-aaaaaaaa-0000-0000-0000-000000000000",
    "GPU-bbbbbbbb-0000-0000-0000-000000000000",
)
MIG = "MIG-cccccccc-0000-0000-0000-000000000000"
RID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def gpu(uid: str, index: int, replica: int | None = None) -> Device:
    device_id = uid if replica is None else f"{uid}::{replica}"
    return Device(
        device_id,
        str(index),
        index,
        uid,
        (f"/dev/nvidia{index}",),
        replicas=4 if replica is not None else 0,
    )


SHARED = Resource(
    "nvidia.com/gpu", tuple(gpu(u, i, k) for i, u in enumerate((GPU_A, GPU_B)) for k in range(4))
)
FULL = Resource("nvidia.com/gpu", (gpu(GPU_A, 0), gpu(GPU_B, 1)))
MIGS = Resource(
    "nvidia.com/mig-1g.5gb",
    (
        Device(
            MIG,
            "1:0",
            1,
            GPU_B,
            ("/dev/nvidia1", "/dev/nvidia-caps/nvidia-cap12", "/dev/nvidia-caps/nvidia-cap13"),
            mig=(1, 0),
        ),
    ),
)


def allocator(resource: Resource, **options: object) -> Allocator:
    return Allocator(
        resource,
        AllocateOptions(**options),  # type: ignore[arg-type]
        cdi_name=lambda name: f"nvidia.com/gpu={name}",
        imex_cdi_name=lambda channel: f"nvidia.com/imex-channel={channel}",
    )


def answer(alloc: Allocator, *containers: list[str]) -> list[dict[str, object]]:
    request = api_pb2.AllocateRequest(
        container_requests=[api_pb2.ContainerAllocateRequest(devices_ids=c) for c in containers]
    )
    out = []
    for c in alloc.allocate(request).container_responses:
        annotations = {RID.sub("<rid>", k): v for k, v in c.annotations.items()}
        out.append(
            {
                "envs": dict(c.envs),
                "mounts": [(m.container_path, m.host_path, m.read_only) for m in c.mounts],
                "devices": [(d.container_path, d.host_path, d.permissions) for d in c.devices],
                "annotations": annotations,
                "cdi": [d.name for d in c.cdi_devices],
            }
        )
    return out


def expect(envs=None, mounts=(), devices=(), annotations=None, cdi=()) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {
        "envs": envs or {},
        "mounts": list(mounts),
        "devices": list(devices),
        "annotations": annotations or {},
        "cdi": list(cdi),
    }


ANNOTATION = {"cdi.k8s.io/nvidia-device-plugin_<rid>": f"nvidia.com/gpu={GPU_A}"}
CDI = [f"nvidia.com/gpu={GPU_A}"]


@pytest.mark.parametrize(
    ("strategies", "expected"),
    [
        pytest.param(("envvar",), expect(envs={"NVIDIA_VISIBLE_DEVICES": GPU_A}), id="envvar"),
        pytest.param(
            ("volume-mounts",),
            expect(
                envs={"NVIDIA_VISIBLE_DEVICES": "/var/run/nvidia-container-devices"},
                mounts=[(f"/var/run/nvidia-container-devices/{GPU_A}", "/dev/null", False)],
            ),
            id="volume-mounts",
        ),
        pytest.param(("cdi-annotations",), expect(annotations=ANNOTATION), id="cdi-annotations"),
        pytest.param(("cdi-cri",), expect(cdi=CDI), id="cdi-cri"),
        pytest.param(
            ("cdi-annotations", "cdi-cri"), expect(annotations=ANNOTATION, cdi=CDI), id="both-cdi"
        ),
        pytest.param(
            ("envvar", "cdi-cri"),
            expect(envs={"NVIDIA_VISIBLE_DEVICES": GPU_A}, cdi=CDI),
            id="envvar-cdi-cri",
        ),
        pytest.param(
            ("envvar", "volume-mounts"),
            expect(
                envs={"NVIDIA_VISIBLE_DEVICES": "/var/run/nvidia-container-devices"},
                mounts=[(f"/var/run/nvidia-container-devices/{GPU_A}", "/dev/null", False)],
            ),
            id="volume-mounts-overwrites-envvar",
        ),
    ],
)
def test_strategies_on_two_replicas_of_one_gpu(
    strategies: tuple[str, ...], expected: dict[str, object]
) -> None:
    """Upstream's example: request [GPU-a::0, GPU-a::3] under time-slicing, 4 replicas."""
    alloc = allocator(SHARED, strategies=strategies, shared=True)
    assert answer(alloc, [f"{GPU_A}::0", f"{GPU_A}::3"]) == [expected]


@pytest.mark.parametrize(
    ("resource", "ids", "id_strategy", "visible"),
    [
        pytest.param(FULL, [GPU_B, GPU_A], "uuid", f"{GPU_B},{GPU_A}", id="uuid-request-order"),
        pytest.param(FULL, [GPU_B, GPU_A], "index", "1,0", id="index-request-order"),
        pytest.param(
            SHARED,
            [f"{GPU_B}::2", f"{GPU_A}::1", f"{GPU_B}::0"],
            "index",
            "1,0",
            id="index-replicas-dedup",
        ),
        pytest.param(MIGS, [MIG], "uuid", MIG, id="mig-uuid"),
        pytest.param(MIGS, [MIG], "index", "1:0", id="mig-index"),
    ],
)
def test_device_id_strategy(
    resource: Resource, ids: list[str], id_strategy: str, visible: str
) -> None:
    alloc = allocator(resource, id_strategy=id_strategy, strategies=("envvar", "cdi-cri"))
    (got,) = answer(alloc, ids)
    assert got["envs"] == {"NVIDIA_VISIBLE_DEVICES": visible}
    assert got["cdi"] == [f"nvidia.com/gpu={v}" for v in visible.split(",")]


def test_each_container_gets_its_own_answer_and_annotation_id() -> None:
    alloc = allocator(FULL, strategies=("cdi-annotations",), annotation_prefix="custom.cdi.k8s.io/")
    request = api_pb2.AllocateRequest(
        container_requests=[
            api_pb2.ContainerAllocateRequest(devices_ids=[GPU_A]),
            api_pb2.ContainerAllocateRequest(devices_ids=[GPU_A, GPU_B]),
        ]
    )
    first, second = alloc.allocate(request).container_responses
    (key1, value1), (key2, value2) = (*first.annotations.items(), *second.annotations.items())
    assert RID.fullmatch(key1.removeprefix("custom.cdi.k8s.io/nvidia-device-plugin_"))
    assert key1 != key2
    assert len(key1.split("/", 1)[1]) == 57
    assert (value1, value2) == (
        f"nvidia.com/gpu={GPU_A}",
        f"nvidia.com/gpu={GPU_A},nvidia.com/gpu={GPU_B}",
    )
    again = alloc.allocate(request).container_responses[0]
    assert list(again.annotations) != [key1]  # fresh per call, not prebuilt


def test_pass_device_specs_under_a_dev_root() -> None:
    alloc = allocator(
        SHARED,
        pass_device_specs=True,
        dev_root="/run/nvidia/driver",
        control_nodes=("/dev/nvidiactl", "/dev/nvidia-uvm"),
    )
    (got,) = answer(alloc, [f"{GPU_A}::0", f"{GPU_A}::1"])
    assert got["devices"] == [
        ("/dev/nvidiactl", "/run/nvidia/driver/dev/nvidiactl", "rw"),
        ("/dev/nvidia-uvm", "/run/nvidia/driver/dev/nvidia-uvm", "rw"),
        ("/dev/nvidia0", "/run/nvidia/driver/dev/nvidia0", "rw"),  # raw IDs: repeated
        ("/dev/nvidia0", "/run/nvidia/driver/dev/nvidia0", "rw"),
    ]


def test_pass_device_specs_of_a_mig_device() -> None:
    (got,) = answer(allocator(MIGS, pass_device_specs=True), [MIG])
    assert [d[0] for d in got["devices"]] == list(MIGS.devices[0].paths)  # type: ignore[union-attr]


def test_imex_channels_and_extras() -> None:
    alloc = allocator(
        FULL,
        strategies=("envvar", "volume-mounts", "cdi-cri"),
        imex_channels=("0",),
        pass_device_specs=True,
        gdrcopy=True,
        gds=True,
        mofed=True,
    )
    (got,) = answer(alloc, [GPU_A])
    assert got == expect(
        envs={
            "NVIDIA_VISIBLE_DEVICES": "/var/run/nvidia-container-devices",
            "NVIDIA_IMEX_CHANNELS": "0",
            "NVIDIA_GDRCOPY": "enabled",
            "NVIDIA_GDS": "enabled",
            "NVIDIA_MOFED": "enabled",
        },
        mounts=[
            (f"/var/run/nvidia-container-devices/{GPU_A}", "/dev/null", False),
            ("/var/run/nvidia-container-devices/imex/0", "/dev/null", False),
        ],
        devices=[
            ("/dev/nvidia0", "/dev/nvidia0", "rw"),
            (
                "/dev/nvidia-caps-imex-channels/channel0",
                "/dev/nvidia-caps-imex-channels/channel0",
                "rw",
            ),
        ],
        cdi=[f"nvidia.com/gpu={GPU_A}", "nvidia.com/imex-channel=0"],
    )


def test_cdi_only_still_sets_extras_and_mps() -> None:
    alloc = allocator(
        SHARED, strategies=("cdi-cri",), gds=True, mps_root="/run/nvidia/mps", shared=True
    )
    (got,) = answer(alloc, [f"{GPU_B}::1"])
    assert got == expect(
        envs={"CUDA_MPS_PIPE_DIRECTORY": "/mps/nvidia.com/gpu/pipe", "NVIDIA_GDS": "enabled"},
        mounts=[
            ("/mps/nvidia.com/gpu/pipe", "/run/nvidia/mps/nvidia.com/gpu/pipe", False),
            ("/dev/shm", "/run/nvidia/mps/shm", False),
        ],
        cdi=[f"nvidia.com/gpu={GPU_B}"],
    )


@pytest.mark.parametrize(
    ("resource", "ids", "options", "message"),
    [
        pytest.param(
            FULL,
            ["GPU-unknown"],
            {},
            'invalid allocation request for "nvidia.com/gpu": invalid request: unknown device:'
            " GPU-unknown",
            id="unknown",
        ),
        pytest.param(
            SHARED,
            [f"{GPU_A}::0", f"{GPU_A}::3"],
            {"shared": True, "fail_requests_greater_than_one": True},
            'invalid allocation request for "nvidia.com/gpu": invalid request: maximum request'
            " size for shared resources is 1; found 2",
            id="fail-requests-greater-than-one",
        ),
    ],
)
def test_validation(
    resource: Resource, ids: list[str], options: dict[str, object], message: str
) -> None:
    with pytest.raises(RequestError) as err:
        answer(allocator(resource, **options), ids)
    assert str(err.value) == message


def test_one_replica_passes_the_limit() -> None:
    alloc = allocator(SHARED, shared=True, fail_requests_greater_than_one=True)
    assert answer(alloc, [f"{GPU_A}::2"])[0]["envs"] == {"NVIDIA_VISIBLE_DEVICES": GPU_A}
