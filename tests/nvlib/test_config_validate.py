"""Start-up checks on merged flags (docs/config.md#start-up-checks).

Matrix: each check with a passing and a failing value and upstream's exact text; the
plugin's order (the first failing check wins); IMEX ids as Go prints them.
"""

from __future__ import annotations

import pytest

from nvlib.config import (
    Config,
    ConfigError,
    Flags,
    Imex,
    PluginFlags,
    ReplicatedResource,
    ReplicatedResources,
    Sharing,
    check_device_discovery_strategy,
    check_imex_channel_ids,
    check_mig_strategy,
    validate_plugin_flags,
)


@pytest.mark.parametrize("value", ["auto", "nvml"])
def test_discovery_strategy_accepted(value: str) -> None:
    check_device_discovery_strategy(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("tegra", "invalid --device-discovery-strategy option tegra: not supported",
                     id="tegra-not-yet"),
        pytest.param("vfio", "invalid --device-discovery-strategy option vfio: not supported",
                     id="vfio-not-yet"),
        pytest.param("bogus", "invalid --device-discovery-strategy option bogus", id="bogus"),
        pytest.param("NVML", "invalid --device-discovery-strategy option NVML", id="case"),
    ],
)  # fmt: skip
def test_discovery_strategy_rejected(value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check_device_discovery_strategy(value)
    assert str(caught.value) == message
    assert (caught.value.path, caught.value.value) == ("flags.deviceDiscoveryStrategy", value)


def test_mig_strategy() -> None:
    for value in ("none", "single", "mixed"):
        check_mig_strategy(value)
    with pytest.raises(ConfigError, match=r"^unknown MIG strategy: bogus$"):
        check_mig_strategy("bogus")


@pytest.mark.parametrize(
    ("ids", "message"),
    [
        pytest.param([], None, id="empty"),
        pytest.param([0], None, id="zero"),
        pytest.param([2], "invalid IMEX config: channelIDs must be [] or [0]; found [2]", id="two"),
        pytest.param(
            [0, 1], "invalid IMEX config: channelIDs must be [] or [0]; found [0 1]", id="several"
        ),
    ],
)
def test_imex_channel_ids(ids: list[int], message: str | None) -> None:
    if message is None:
        check_imex_channel_ids(ids)
        return
    with pytest.raises(ConfigError) as caught:
        check_imex_channel_ids(ids)
    assert str(caught.value) == message


MPS = Sharing(mps=ReplicatedResources(resources=[ReplicatedResource("nvidia.com/gpu", 2)]))


@pytest.mark.parametrize(
    ("config", "nvml", "message"),
    [
        pytest.param(Config(), True, None, id="defaults"),
        pytest.param(
            Config(flags=Flags(plugin=PluginFlags(device_list_strategy=["envvar", "cdi-cri"]))),
            True,
            None,
            id="cdi-with-nvml",
        ),
        pytest.param(
            Config(flags=Flags(plugin=PluginFlags(device_list_strategy=["envvar", "bogus"]))),
            True,
            "invalid --device-list-strategy option: invalid strategy: bogus",
            id="bad-list-strategy",
        ),
        pytest.param(
            Config(flags=Flags(plugin=PluginFlags(device_list_strategy=["cdi-annotations"]))),
            False,
            "CDI --device-list-strategy options are only supported on NVML-based systems",
            id="cdi-without-nvml",
        ),
        pytest.param(
            Config(flags=Flags(plugin=PluginFlags(device_id_strategy="serial"))),
            True,
            "invalid --device-id-strategy option: serial",
            id="bad-id-strategy",
        ),
        pytest.param(
            Config(flags=Flags(plugin=PluginFlags(shared_devices_allocation_policy="spread"))),
            True,
            "invalid --shared-devices-allocation-policy option: spread",
            id="bad-policy",
        ),
        pytest.param(
            Config(flags=Flags(mig_strategy="mixed", mps_root="/m"), sharing=MPS),
            True,
            "using --mig-strategy=mixed is not supported with MPS",
            id="mps-mixed",
        ),
        pytest.param(
            Config(sharing=MPS),
            True,
            "using MPS requires --mps-root to be specified",
            id="mps-root",
        ),
        pytest.param(Config(flags=Flags(mps_root="/m"), sharing=MPS), True, None, id="mps-ok"),
        pytest.param(
            Config(flags=Flags(device_discovery_strategy="tegra")),
            True,
            "invalid --device-discovery-strategy option tegra: not supported",
            id="tegra",
        ),
        pytest.param(
            Config(flags=Flags(mig_strategy="bogus")),
            True,
            "unknown MIG strategy: bogus",
            id="mig-strategy",
        ),
        pytest.param(
            Config(imex=Imex(channel_ids=[3])),
            True,
            "invalid IMEX channel IDs: invalid IMEX config: channelIDs must be [] or [0];"
            " found [3]",
            id="imex",
        ),
        pytest.param(
            Config(
                flags=Flags(mig_strategy="bogus", plugin=PluginFlags(device_id_strategy="serial"))
            ),
            True,
            "invalid --device-id-strategy option: serial",
            id="first-check-wins",
        ),
    ],
)
def test_validate_plugin_flags(config: Config, nvml: bool, message: str | None) -> None:
    if message is None:
        validate_plugin_flags(config, nvml_available=nvml)
        return
    with pytest.raises(ConfigError) as caught:
        validate_plugin_flags(config, nvml_available=nvml)
    assert str(caught.value) == message
