"""The schema's behaviour: sharing strategy, replication lookup, and the logged JSON.

Matrix: sharing strategy over {no section, time-slicing, MPS, both} x {replicas > 1 or
not}; replication lookup by exact resource name, MPS hiding time-slicing; every omission
rule of the logged JSON (docs/config.md) on a whole-document comparison, and Go's HTML
escaping.
"""

from __future__ import annotations

import json

import pytest

from nvlib.config import (
    Config,
    Duration,
    Flags,
    GfdFlags,
    Imex,
    ReplicatedResource,
    ReplicatedResources,
    Resource,
    Resources,
    Sharing,
)

GPU = "nvidia.com/gpu"
MIG = "nvidia.com/mig-1g.5gb"


def _section(*entries: tuple[str, int]) -> ReplicatedResources:
    return ReplicatedResources(resources=[ReplicatedResource(n, r) for n, r in entries])


@pytest.mark.parametrize(
    ("sharing", "strategy"),
    [
        pytest.param(Sharing(), "none", id="no-sharing"),
        pytest.param(Sharing(time_slicing=_section((GPU, 4))), "time-slicing", id="time-slicing"),
        pytest.param(Sharing(mps=_section((GPU, 2))), "mps", id="mps"),
        pytest.param(
            Sharing(time_slicing=_section((GPU, 4)), mps=_section((GPU, 2))),
            "mps",
            id="mps-wins-over-time-slicing",
        ),
        pytest.param(
            Sharing(time_slicing=_section((GPU, 4)), mps=_section((GPU, 1))),
            "time-slicing",
            id="unreplicated-mps-falls-back-to-time-slicing",
        ),
        pytest.param(Sharing(time_slicing=_section((GPU, 1))), "none", id="one-replica-is-none"),
        pytest.param(
            Sharing(time_slicing=_section((GPU, 1), (MIG, 3))),
            "time-slicing",
            id="any-entry-replicated",
        ),
    ],
)
def test_sharing_strategy(sharing: Sharing, strategy: str) -> None:
    assert sharing.sharing_strategy() == strategy


def test_replicated_resources_prefers_a_present_mps_section() -> None:
    time_slicing, mps = _section((GPU, 4)), _section((GPU, 1))
    assert Sharing().replicated_resources() is None
    assert Sharing(time_slicing=time_slicing).replicated_resources() is time_slicing
    # An mps key hides time-slicing even when it replicates nothing (docs/labels.md#sharing).
    assert Sharing(time_slicing=time_slicing, mps=mps).replicated_resources() is mps


@pytest.mark.parametrize(
    ("sharing", "name", "replicas"),
    [
        pytest.param(Sharing(), GPU, None, id="no-sharing"),
        pytest.param(Sharing(time_slicing=_section((GPU, 4))), GPU, 4, id="match"),
        pytest.param(Sharing(time_slicing=_section((MIG, 4))), GPU, None, id="other-resource"),
        pytest.param(Sharing(time_slicing=_section((GPU, 4), (MIG, 3))), MIG, 3, id="second-entry"),
        pytest.param(
            Sharing(time_slicing=_section((GPU, 4)), mps=_section((MIG, 2))),
            GPU,
            None,
            id="mps-section-hides-time-slicing",
        ),
        pytest.param(Sharing(time_slicing=_section((GPU, 4))), "gpu", None, id="exact-name-only"),
    ],
)
def test_replication_for(sharing: Sharing, name: str, replicas: int | None) -> None:
    entry = sharing.replication_for(name)
    assert (entry.replicas if entry else None) == replicas


def test_default_config_json() -> None:
    assert json.loads(Config().to_json()) == {
        "version": "v1",
        "flags": {
            "migStrategy": "none",
            "failOnInitError": True,
            "gdrcopyEnabled": False,
            "gdsEnabled": False,
            "mofedEnabled": False,
            "useNodeFeatureAPI": None,  # unset; GFD's parse makes it "auto"
            "deviceDiscoveryStrategy": "auto",
            "plugin": {
                "passDeviceSpecs": False,
                "deviceListStrategy": ["envvar"],
                "deviceIDStrategy": "uuid",
                "cdiAnnotationPrefix": "cdi.k8s.io/",
                "nvidiaCTKPath": "/usr/bin/nvidia-ctk",
                "containerDriverRoot": "/driver-root",
                "sharedDevicesAllocationPolicy": "distributed",
            },
            "gfd": {
                "oneshot": False,
                "noTimestamp": False,
                "sleepInterval": "1m0s",
                "outputFile": "/etc/kubernetes/node-feature-discovery/features.d/gfd",
                "machineTypeFile": "/sys/class/dmi/id/product_name",
            },
        },
        # Go's nil slice without omitempty, and struct values that are always printed.
        "resources": {"gpus": None},
        "sharing": {"timeSlicing": {}},
        "imex": {},
    }


def test_json_is_indented_like_go_and_keeps_upstream_key_order() -> None:
    text = Config().to_json()
    assert text.startswith('{\n  "version": "v1",\n  "flags": {\n    "migStrategy": "none",\n')
    assert list(json.loads(text)) == ["version", "flags", "resources", "sharing", "imex"]
    assert list(json.loads(text)["flags"]) == [
        "migStrategy",
        "failOnInitError",
        "gdrcopyEnabled",
        "gdsEnabled",
        "mofedEnabled",
        "useNodeFeatureAPI",
        "deviceDiscoveryStrategy",
        "plugin",
        "gfd",
    ]


def test_set_optional_flags_appear_in_upstream_order() -> None:
    flags = Flags(mps_root="/run/nvidia/mps", nvidia_driver_root="/", nvidia_dev_root="/dev-root")
    keys = list(json.loads(Config(flags=flags).to_json())["flags"])
    assert keys[:5] == [
        "migStrategy",
        "failOnInitError",
        "mpsRoot",
        "nvidiaDriverRoot",
        "nvidiaDevRoot",
    ]


@pytest.mark.parametrize(
    ("use_node_feature_api", "logged"),
    [("true", True), ("false", False), ("auto", "auto"), (None, None)],
)
def test_use_node_feature_api_logged_as_bool_or_auto(
    use_node_feature_api: str | None, logged: object
) -> None:
    config = Config(flags=Flags(use_node_feature_api=use_node_feature_api))
    assert json.loads(config.to_json())["flags"]["useNodeFeatureAPI"] == logged


def test_plugin_log_drops_gfd_section() -> None:
    assert "gfd" not in json.loads(Config().to_json(include_gfd=False))["flags"]


@pytest.mark.parametrize(
    ("interval", "logged"),
    [
        pytest.param(Duration(5), "5ns", id="config-number-is-ns"),
        pytest.param(Duration(0), "0s", id="zero"),
        pytest.param(Duration(3_600_000_000_000), "1h0m0s", id="hour"),
        pytest.param(Duration(None), "infinite", id="infinite"),
    ],
)
def test_sleep_interval_logged_in_go_form(interval: Duration, logged: str) -> None:
    config = Config(flags=Flags(gfd=GfdFlags(sleep_interval=interval)))
    assert json.loads(config.to_json())["flags"]["gfd"]["sleepInterval"] == logged


def test_sharing_resources_and_imex_json() -> None:
    config = Config(
        resources=Resources(gpus=[Resource("*", GPU)], mig=[Resource("1g.5gb", MIG)]),
        sharing=Sharing(
            time_slicing=ReplicatedResources(
                resources=[
                    ReplicatedResource(GPU, 4, rename=GPU + ".shared"),
                    ReplicatedResource(MIG, 2, devices=["0:0", "1"]),
                    ReplicatedResource("nvidia.com/mig-2g.10gb", 3, devices=2),
                ],
                rename_by_default=True,
                fail_requests_greater_than_one=False,
            ),
            mps=ReplicatedResources(
                resources=[ReplicatedResource(GPU, 2)], fail_requests_greater_than_one=True
            ),
        ),
        imex=Imex(channel_ids=[0], required=True),
    )
    doc = json.loads(config.to_json())
    assert doc["resources"] == {
        "gpus": [{"pattern": "*", "name": GPU}],
        "mig": [{"pattern": "1g.5gb", "name": MIG}],
    }
    assert doc["sharing"] == {
        "timeSlicing": {
            "renameByDefault": True,
            "failRequestsGreaterThanOne": False,  # set, so printed even when false
            "resources": [
                {"name": GPU, "rename": GPU + ".shared", "devices": "all", "replicas": 4},
                {"name": MIG, "devices": ["0:0", "1"], "replicas": 2},
                {"name": "nvidia.com/mig-2g.10gb", "devices": 2, "replicas": 3},
            ],
        },
        "mps": {
            "failRequestsGreaterThanOne": True,
            "resources": [{"name": GPU, "devices": "all", "replicas": 2}],
        },
    }
    assert doc["imex"] == {"channelIDs": [0], "required": True}


def test_json_escapes_like_go() -> None:
    config = Config(flags=Flags(mps_root="/a&b<c>"))
    assert '"mpsRoot": "/a\\u0026b\\u003cc\\u003e"' in config.to_json()
    assert json.loads(config.to_json())["flags"]["mpsRoot"] == "/a&b<c>"
