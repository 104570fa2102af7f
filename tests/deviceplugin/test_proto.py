"""The generated v1beta1 modules: committed, current, and on the wire as the kubelet's.

Regenerates with deviceplugin/v1beta1/regenerate.sh into a temp dir and compares the
bytes with the committed files; checks package, method paths and the field numbers of
the kubelet's v1beta1 API.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deviceplugin.v1beta1 import api_pb2

REPO = Path(__file__).resolve().parents[2]
GENERATED = ("api_pb2.py", "api_pb2.pyi", "api_pb2_grpc.py")


def test_regenerated_code_matches_the_committed_files(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools==1.85.1 is a test dependency")
    script = REPO / "deviceplugin" / "v1beta1" / "regenerate.sh"
    env = {**os.environ, "PYTHON": sys.executable}
    subprocess.run(["bash", str(script), str(tmp_path)], check=True, env=env, timeout=60)
    for name in GENERATED:
        fresh = (tmp_path / "deviceplugin" / "v1beta1" / name).read_bytes()
        assert fresh == (REPO / "deviceplugin" / "v1beta1" / name).read_bytes(), name


FIELDS = {
    "DevicePluginOptions": {"pre_start_required": 1, "get_preferred_allocation_available": 2},
    "RegisterRequest": {"version": 1, "endpoint": 2, "resource_name": 3, "options": 4},
    "Empty": {},
    "ListAndWatchResponse": {"devices": 1},
    "Device": {"ID": 1, "health": 2, "topology": 3},
    "TopologyInfo": {"nodes": 1},
    "NUMANode": {"ID": 1},
    "PreStartContainerRequest": {"devices_ids": 1},
    "PreStartContainerResponse": {},
    "PreferredAllocationRequest": {"container_requests": 1},
    "ContainerPreferredAllocationRequest": {
        "available_deviceIDs": 1,
        "must_include_deviceIDs": 2,
        "allocation_size": 3,
    },
    "PreferredAllocationResponse": {"container_responses": 1},
    "ContainerPreferredAllocationResponse": {"deviceIDs": 1},
    "AllocateRequest": {"container_requests": 1},
    "ContainerAllocateRequest": {"devices_ids": 1},
    "AllocateResponse": {"container_responses": 1},
    "ContainerAllocateResponse": {
        "envs": 1,
        "mounts": 2,
        "devices": 3,
        "annotations": 4,
        "cdi_devices": 5,
    },
    "Mount": {"container_path": 1, "host_path": 2, "read_only": 3},
    "DeviceSpec": {"container_path": 1, "host_path": 2, "permissions": 3},
    "CDIDevice": {"name": 1},
}


def test_messages_and_field_numbers() -> None:
    file = api_pb2.DESCRIPTOR
    assert file.package == "v1beta1"
    for message, fields in FIELDS.items():
        descriptor = file.message_types_by_name[message]
        assert {f.name: f.number for f in descriptor.fields} == fields, message


def test_services() -> None:
    services = api_pb2.DESCRIPTOR.services_by_name
    assert [m.full_name for m in services["Registration"].methods] == [
        "v1beta1.Registration.Register"
    ]
    plugin = services["DevicePlugin"]
    assert [m.name for m in plugin.methods] == [
        "GetDevicePluginOptions",
        "ListAndWatch",
        "GetPreferredAllocation",
        "Allocate",
        "PreStartContainer",
    ]
    assert plugin.methods_by_name["ListAndWatch"].server_streaming
