"""Spec bytes: yaml.v3's quoting and layout, Go's JSON, as nvidia-ctk writes them.

Matrix: one row per quoting rule of a scalar; the toolkit's example spec byte for byte in
YAML and JSON; round trips through PyYAML (names forced to strings by quoting) and
through our strict loader.
"""

from __future__ import annotations

import json

import pytest
import yaml

from cdi.encode import to_json, to_yaml, yaml_scalar
from cdi.load import parse_spec
from cdi.spec import ContainerEdits, Device, DeviceNode, Hook, Mount, Spec


@pytest.mark.parametrize(
    ("value", "written"),
    [
        pytest.param("0", '"0"', id="int"),
        pytest.param("1:0", '"1:0"', id="base-60-mig-index"),
        pytest.param("12:30", '"12:30"', id="base-60"),
        pytest.param("010", '"010"', id="octal"),
        pytest.param("755", '"755"', id="mode"),
        pytest.param("1.5", '"1.5"', id="float"),
        pytest.param("1e3", '"1e3"', id="exponent"),
        pytest.param("0x1f", '"0x1f"', id="hex"),
        pytest.param("yes", '"yes"', id="yaml-1.1-bool"),
        pytest.param("on", '"on"', id="yaml-1.1-on"),
        pytest.param("true", '"true"', id="bool"),
        pytest.param("null", '"null"', id="null"),
        pytest.param("~", '"~"', id="tilde"),
        pytest.param("", '""', id="empty"),
        pytest.param("2001-12-14", '"2001-12-14"', id="timestamp"),
        pytest.param(".inf", '".inf"', id="infinity"),
        pytest.param("0.5.0", "0.5.0", id="version-plain"),
        pytest.param(
            "GPU-0008bcf4-cae8-0120-a18f-bc344fb1c710",
            "GPU-0008bcf4-cae8-0120-a18f-bc344fb1c710",
            id="uuid",
        ),
        pytest.param("MIG-1:x", "MIG-1:x", id="colon-inside"),
        pytest.param("/dev/nvidia0", "/dev/nvidia0", id="path"),
        pytest.param("--link", "--link", id="flag"),
        pytest.param(
            "libcuda.so.1::/usr/lib/x86_64-linux-gnu/libcuda.so",
            "libcuda.so.1::/usr/lib/x86_64-linux-gnu/libcuda.so",
            id="link-plain",
        ),
        pytest.param("NVIDIA_VISIBLE_DEVICES=void", "NVIDIA_VISIBLE_DEVICES=void", id="env"),
        pytest.param("C=a: b", "'C=a: b'", id="colon-space"),
        pytest.param("trailing ", "'trailing '", id="trailing-space"),
        pytest.param(" leading", "' leading'", id="leading-space"),
        pytest.param("a #b", "'a #b'", id="comment"),
        pytest.param("#a", "'#a'", id="comment-start"),
        pytest.param("*x", "'*x'", id="alias-start"),
        pytest.param("- x", "'- x'", id="dash-space"),
        pytest.param("-", "'-'", id="dash-alone"),
        pytest.param("x:", "'x:'", id="colon-end"),
        pytest.param("it's", "it's", id="apostrophe-inside"),
        pytest.param("a\tb", '"a\\tb"', id="tab"),
        pytest.param('a"b', 'a"b', id="quote-inside"),
        pytest.param("é", "é", id="unicode"),
        pytest.param(438, "438", id="number"),
        pytest.param(True, "true", id="bool-value"),
    ],
)
def test_yaml_scalar(value: str | int, written: str) -> None:
    assert yaml_scalar(value) == written
    if isinstance(value, str):
        loaded = yaml.load(f"k: {written}\n", Loader=yaml.BaseLoader)["k"]
        assert loaded == value  # whatever the style, it reads back as the same string


# The toolkit's example spec, with one device node field of each kind added.
EXAMPLE = Spec(
    "0.5.0",
    "nvidia.com/gpu",
    (
        Device("0", ContainerEdits(device_nodes=(DeviceNode("/dev/nvidia0"),))),
        Device(
            "GPU-0008bcf4-cae8-0120-a18f-bc344fb1c710",
            ContainerEdits(device_nodes=(DeviceNode("/dev/nvidia0"),)),
        ),
        Device(
            "all",
            ContainerEdits(
                device_nodes=(
                    DeviceNode(
                        "/dev/nvidia0",
                        "/r/dev/nvidia0",
                        major=195,
                        file_mode=438,
                        permissions="rwm",
                        gid=44,
                    ),
                )
            ),
        ),
    ),
    ContainerEdits(
        env=("NVIDIA_CTK_LIBCUDA_DIR=/usr/lib/x86_64-linux-gnu", "NVIDIA_VISIBLE_DEVICES=void"),
        device_nodes=(DeviceNode("/dev/nvidia-uvm"), DeviceNode("/dev/nvidiactl")),
        hooks=(
            Hook(
                "createContainer",
                "/usr/bin/nvidia-cdi-hook",
                (
                    "nvidia-cdi-hook",
                    "create-symlinks",
                    "--link",
                    "libcuda.so.1::/usr/lib/x86_64-linux-gnu/libcuda.so",
                ),
                ("NVIDIA_CTK_DEBUG=false",),
            ),
        ),
        mounts=(
            Mount(
                "/usr/bin/nvidia-smi",
                "/usr/bin/nvidia-smi",
                ("ro", "nosuid", "nodev", "rbind", "rprivate"),
            ),
        ),
    ),
)

EXAMPLE_YAML = """\
---
cdiVersion: 0.5.0
kind: nvidia.com/gpu
devices:
    - name: "0"
      containerEdits:
        deviceNodes:
            - path: /dev/nvidia0
    - name: GPU-0008bcf4-cae8-0120-a18f-bc344fb1c710
      containerEdits:
        deviceNodes:
            - path: /dev/nvidia0
    - name: all
      containerEdits:
        deviceNodes:
            - path: /dev/nvidia0
              hostPath: /r/dev/nvidia0
              major: 195
              fileMode: 438
              permissions: rwm
              gid: 44
containerEdits:
    env:
        - NVIDIA_CTK_LIBCUDA_DIR=/usr/lib/x86_64-linux-gnu
        - NVIDIA_VISIBLE_DEVICES=void
    deviceNodes:
        - path: /dev/nvidia-uvm
        - path: /dev/nvidiactl
    hooks:
        - hookName: createContainer
          path: /usr/bin/nvidia-cdi-hook
          args:
            - nvidia-cdi-hook
            - create-symlinks
            - --link
            - libcuda.so.1::/usr/lib/x86_64-linux-gnu/libcuda.so
          env:
            - NVIDIA_CTK_DEBUG=false
    mounts:
        - hostPath: /usr/bin/nvidia-smi
          containerPath: /usr/bin/nvidia-smi
          options:
            - ro
            - nosuid
            - nodev
            - rbind
            - rprivate
"""


def test_yaml_matches_nvidia_ctk_layout() -> None:
    assert to_yaml(EXAMPLE).decode() == EXAMPLE_YAML


def test_json_is_go_compact_struct_order() -> None:
    text = to_json(EXAMPLE).decode()
    assert not text.endswith("\n")
    assert text.startswith('{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[{"name":"0",')
    assert '"deviceNodes":[{"path":"/dev/nvidia0","hostPath":"/r/dev/nvidia0","major":195,' in text
    assert json.loads(text) == EXAMPLE.to_dict()


def test_json_escapes_like_go() -> None:
    spec = Spec("0.3.0", "a.com/b", (Device("x", ContainerEdits(env=("A=<&>",))),))
    assert '"A=\\u003c\\u0026\\u003e"' in to_json(spec).decode()


def test_empty_common_edits() -> None:
    """yaml.v3 omits an empty struct; Go's JSON writes `{}`."""
    spec = Spec("0.3.0", "a.com/b", (Device("x", ContainerEdits(env=("A=1",))),))
    assert "containerEdits:\n    env" not in to_yaml(spec).decode()
    assert to_yaml(spec).decode().endswith("            - A=1\n")
    assert to_json(spec).decode().endswith(',"containerEdits":{}}')


@pytest.mark.parametrize("encode", [to_yaml, to_json], ids=["yaml", "json"])
def test_round_trip(encode: object) -> None:
    data = encode(EXAMPLE)  # type: ignore[operator]
    spec, problems = parse_spec(data)
    assert problems == []
    assert spec == EXAMPLE
    assert yaml.safe_load(data) == EXAMPLE.to_dict()  # quoted names stay strings in PyYAML


def test_equal_device_edits_written_in_full_under_each_name() -> None:
    """A device's edits recurring under another name are written once and reused: the
    same lines, in full, under each name; empty edits stay `{}`."""
    edits = ContainerEdits(env=("A=1",), device_nodes=(DeviceNode("/dev/nvidia0", major=195),))
    devices = (Device("0", edits), Device("GPU-1", edits), Device("e", ContainerEdits()))
    block = (
        "      containerEdits:\n"
        "        env:\n"
        "            - A=1\n"
        "        deviceNodes:\n"
        "            - path: /dev/nvidia0\n"
        "              major: 195\n"
    )
    assert to_yaml(Spec("0.5.0", "a.com/b", devices)).decode() == (
        "---\ncdiVersion: 0.5.0\nkind: a.com/b\ndevices:\n"
        f'    - name: "0"\n{block}    - name: GPU-1\n{block}'
        "    - name: e\n      containerEdits: {}\n"
    )
