"""The chart on a simulated machine (`simulator.profile`): a cluster without GPUs.

Matrix: NVML_MOCK in every container of the three DaemonSets (and in none by default);
the CDI generator's arguments and mounts (the simulator root at its host path, no driver
root); GFD without the host's /sys; the plugin's mounts as on a real node; scheduling
without the GPU-node affinity, with simulator.nodeSelector joining nodeSelector and the
tolerations kept; the refusals (a real driver root beside a simulated machine) and the
schema (profile names against the simulator's, paths, the root). Lint, kubernetes-
validate and the commands' own parsers cover the `simulator` value set of
helm_chart.VALUE_SETS with every other set.
"""

from __future__ import annotations

from typing import Any

import pytest
from helm_chart import (
    CHART,
    NAMESPACE,
    assert_schema_rejects,
    container,
    env,
    mounts,
    pod_spec,
    render,
    run_helm,
)

COMPONENTS = ("device-plugin", "gpu-feature-discovery", "cdi-generator")
ROOT = "/var/lib/gpu-node-toolkit/simulator"
HEARTBEATS = "/run/gpu-node-toolkit/heartbeat"  # the liveness probes' emptyDir
SIMULATED = {"simulator": {"profile": "dgx-a100"}}
DOCS = render(SIMULATED)


def all_containers(docs: list[dict[str, Any]], component: str) -> list[dict[str, Any]]:
    return pod_spec(docs, component)["containers"]


@pytest.mark.parametrize("component", COMPONENTS)
def test_every_container_runs_the_profile(component: str) -> None:
    docs = render({"simulator": {"profile": "dgx-a100"}, "cdi": {"imex": {"enabled": True}}})
    for ctr in all_containers(docs, component):
        assert env(ctr)["NVML_MOCK"] == "dgx-a100"


@pytest.mark.parametrize("component", COMPONENTS)
def test_no_simulation_by_default(component: str) -> None:
    for ctr in all_containers(render(), component):
        assert "NVML_MOCK" not in env(ctr)


def test_a_profile_file_in_the_image() -> None:
    docs = render({"simulator": {"profile": "/profiles/lab.yaml"}})
    assert env(container(docs, "device-plugin"))["NVML_MOCK"] == "/profiles/lab.yaml"


@pytest.mark.parametrize(
    ("values", "commands", "root"),
    [
        pytest.param(
            {}, [["generate", "--output=/var/run/cdi/nvidia.yaml", "--watch",
                  f"--simulator-root={ROOT}", "--disable-hook=all"]], ROOT, id="defaults",
        ),
        pytest.param(
            {"cdi": {"imex": {"enabled": True}, "interval": "10s"},
             "simulator": {"root": "/srv/sim/"}},
            [["generate", "--output=/var/run/cdi/nvidia.yaml", "--watch", "--interval=10s",
              "--simulator-root=/srv/sim", "--disable-hook=all"],
             ["generate", "--mode=imex", "--output=/var/run/cdi/nvidia-imex.yaml", "--watch",
              "--interval=10s", "--simulator-root=/srv/sim", "--disable-hook=all"]],
            "/srv/sim", id="imex-and-own-root",
        ),
    ],
)  # fmt: skip
def test_cdi_lays_out_the_simulator_root(
    values: dict[str, Any], commands: list[list[str]], root: str
) -> None:
    """No driver to mount: the simulated root is laid out at its host path, both
    containers share it, and no hook is named (no nvidia-cdi-hook on such a node)."""
    simulator = {"profile": "dgx-a100", **values.get("simulator", {})}
    docs = render({**values, "simulator": simulator})
    ctrs = all_containers(docs, "cdi-generator")
    heartbeats = [f"--heartbeat-file={HEARTBEATS}/{c['name']}" for c in ctrs]
    assert [c["args"] for c in ctrs] == [[*a, h] for a, h in zip(commands, heartbeats, strict=True)]
    assert [env(c) for c in ctrs] == [
        {"NVIDIA_VISIBLE_DEVICES": "void", "NVML_MOCK": "dgx-a100"}
    ] * len(commands)
    expected = {
        "/var/run/cdi": {
            "readOnly": False,
            "hostPath": {"path": "/var/run/cdi", "type": "DirectoryOrCreate"},
        },
        root: {"readOnly": False, "hostPath": {"path": root, "type": "DirectoryOrCreate"}},
        HEARTBEATS: {"readOnly": False, "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
    }
    for index in range(len(commands)):
        assert mounts(docs, "cdi-generator", index) == expected


def test_gfd_does_not_mount_the_hosts_sys() -> None:
    assert "/sys" in mounts(render(), "gpu-feature-discovery")
    assert "/sys" not in mounts(DOCS, "gpu-feature-discovery")
    volumes = [v["name"] for v in pod_spec(DOCS, "gpu-feature-discovery")["volumes"]]
    assert volumes == ["output-dir", "heartbeat"]


def test_plugin_reads_the_simulated_root_the_generator_lays_out() -> None:
    """As on a real node, plus the simulated root at its host path: a spec of the plugin's
    own (written when it starts before the generator) names what exists on the host."""
    simulated, real = mounts(DOCS, "device-plugin"), mounts(render(), "device-plugin")
    assert simulated == {
        **real,
        ROOT: {
            "readOnly": True,
            "mountPropagation": "HostToContainer",
            "hostPath": {"path": ROOT, "type": "DirectoryOrCreate"},
        },
    }
    ctr = container(DOCS, "device-plugin")
    assert ctr["args"] == container(render(), "device-plugin")["args"]
    assert {k: env(ctr)[k] for k in ("NVIDIA_DRIVER_ROOT", "CDI_DISABLE_HOOKS")} == {
        "NVIDIA_DRIVER_ROOT": ROOT,
        "CDI_DISABLE_HOOKS": "all",
    }


@pytest.mark.parametrize(
    ("values", "node_selector"),
    [
        pytest.param({}, None, id="every-node"),
        pytest.param({"simulator": {"nodeSelector": {"sim": "yes"}}}, {"sim": "yes"},
                     id="simulator-node-selector"),
        pytest.param({"nodeSelector": {"pool": "a", "sim": "no"},
                      "simulator": {"nodeSelector": {"sim": "yes"}}},
                     {"pool": "a", "sim": "yes"}, id="joined-simulator-wins"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("component", COMPONENTS)
def test_scheduling_without_nvidia_labels(
    component: str, values: dict[str, Any], node_selector: dict[str, str] | None
) -> None:
    simulator = {"profile": "dgx-a100", **values.get("simulator", {})}
    spec = pod_spec(render({**values, "simulator": simulator}), component)
    assert "affinity" not in spec
    assert spec.get("nodeSelector") == node_selector
    assert spec["tolerations"] == pod_spec(render(), component)["tolerations"]
    assert "affinity" in pod_spec(render(values), component)  # only the simulation drops it


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"nvidiaDriverRoot": "/run/nvidia/driver"}, id="driver-root"),
        pytest.param({"nvidiaDevRoot": "/"}, id="dev-root"),
    ],
)
def test_a_real_driver_root_is_refused(values: dict[str, Any]) -> None:
    result = run_helm(
        "template", "x", str(CHART), "--namespace", NAMESPACE, values={**values, **SIMULATED}
    )
    assert result.returncode != 0
    assert (
        "'simulator.profile' is \"dgx-a100\": the DaemonSets run on a simulated machine, so "
        "'nvidiaDriverRoot' and 'nvidiaDevRoot' (a real driver's) must be unset"
    ) in result.stderr


@pytest.mark.parametrize(
    ("simulator", "path"),
    [
        pytest.param({"profile": "dgx-a101"}, "/simulator/profile", id="unknown-machine"),
        pytest.param({"profile": "profiles/lab.yaml"}, "/simulator/profile", id="relative-file"),
        pytest.param({"profile": "/profiles/"}, "/simulator/profile", id="a-directory"),
        pytest.param({"root": "/"}, "/simulator/root", id="root-slash"),
        pytest.param({"root": "var/lib/sim"}, "/simulator/root", id="root-relative"),
        pytest.param({"nodeSelector": {"sim": True}}, "/simulator/nodeSelector/sim",
                     id="selector-not-text"),
        pytest.param({"profiles": "t4"}, "/simulator", id="misspelt-key"),
    ],
)  # fmt: skip
def test_schema_rejects(simulator: dict[str, Any], path: str) -> None:
    assert_schema_rejects({"simulator": simulator}, path)


def test_schema_names_the_simulators_machines() -> None:
    """A machine the simulator gains or loses must be added to or removed from the schema."""
    import json

    from nvlib.sim import BUILTIN_PROFILES

    schema = json.loads((CHART / "values.schema.json").read_text())
    names = schema["properties"]["simulator"]["properties"]["profile"]["anyOf"][0]["enum"]
    assert names == ["", *BUILTIN_PROFILES]
