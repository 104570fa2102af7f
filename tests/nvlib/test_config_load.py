"""Reading config files, and normalisation.

Matrix: good documents in YAML and JSON compared as whole Config values (defaults, every
field, upstream's decoder quirks: case-insensitive plain keys, scalar-to-string, null
handling, numbers as nanoseconds, no YAML timestamps, tab-indented JSON); the bad-config
corpus (one file per fault under data/bad-configs/, each carrying its expected text on its
first line, `# expect:` or `"_expect"`, and the field path, `# path:` or `"_path"`);
file-level errors; every normalisation rule with its warning, and idempotence.

Left out on purpose: YAML syntax messages are PyYAML's, not go-yaml's; only the wrapping
around them follows upstream.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nvlib.config import (
    FILE_ERROR_PREFIX,
    Config,
    ConfigError,
    Duration,
    Flags,
    GfdFlags,
    Imex,
    PluginFlags,
    ReplicatedResource,
    ReplicatedResources,
    Resource,
    Resources,
    Sharing,
    normalise,
    parse_config_data,
    parse_config_file,
)

BAD_CONFIGS = Path(__file__).parent / "data" / "bad-configs"
GPU = "nvidia.com/gpu"


def _load(tmp_path: Path, text: str, name: str = "config.yaml") -> Config:
    path = tmp_path / name
    path.write_text(text)
    return parse_config_file(str(path))


FULL_YAML = """\
version: v1
flags:
  migStrategy: mixed
  failOnInitError: false
  mpsRoot: /run/nvidia/mps
  nvidiaDriverRoot: /run/nvidia/driver
  nvidiaDevRoot: /
  gdrcopyEnabled: true
  gdsEnabled: true
  mofedEnabled: true
  useNodeFeatureAPI: false
  deviceDiscoveryStrategy: nvml
  plugin:
    passDeviceSpecs: true
    deviceListStrategy: [envvar, cdi-cri]
    deviceIDStrategy: index
    cdiAnnotationPrefix: cdi.example.com/
    nvidiaCTKPath: /usr/local/bin/nvidia-ctk
    containerDriverRoot: /host-driver
    sharedDevicesAllocationPolicy: packed
  gfd:
    oneshot: true
    noTimestamp: true
    sleepInterval: 90s
    outputFile: /tmp/gfd
    machineTypeFile: /tmp/product_name
resources:
  gpus:
  - pattern: "*"
    name: gpu
sharing:
  timeSlicing:
    renameByDefault: true
    failRequestsGreaterThanOne: true
    resources:
    - name: gpu
      replicas: 4
    - name: nvidia.com/mig-1g.5gb
      rename: mig-small
      devices: [0, "1:0", GPU-b1028956-cfa2-0990-bf4a-5da9abb51763]
      replicas: 2
imex:
  channelIDs: [0]
  required: true
unknownTopLevel: ignored
"""

FULL_CONFIG = Config(
    flags=Flags(
        mig_strategy="mixed",
        fail_on_init_error=False,
        use_node_feature_api="false",
        device_discovery_strategy="nvml",
        mps_root="/run/nvidia/mps",
        nvidia_driver_root="/run/nvidia/driver",
        nvidia_dev_root="/",
        gdrcopy_enabled=True,
        gds_enabled=True,
        mofed_enabled=True,
        gfd=GfdFlags(
            oneshot=True,
            no_timestamp=True,
            sleep_interval=Duration(90_000_000_000),
            output_file="/tmp/gfd",
            machine_type_file="/tmp/product_name",
        ),
        plugin=PluginFlags(
            pass_device_specs=True,
            device_list_strategy=["envvar", "cdi-cri"],
            device_id_strategy="index",
            cdi_annotation_prefix="cdi.example.com/",
            nvidia_ctk_path="/usr/local/bin/nvidia-ctk",
            container_driver_root="/host-driver",
            shared_devices_allocation_policy="packed",
        ),
    ),
    resources=Resources(gpus=[Resource("*", GPU)]),
    sharing=Sharing(
        time_slicing=ReplicatedResources(
            resources=[
                ReplicatedResource(GPU, 4, rename=GPU + ".shared"),
                ReplicatedResource(
                    "nvidia.com/mig-1g.5gb",
                    2,
                    rename="nvidia.com/mig-small",
                    devices=["0", "1:0", "GPU-b1028956-cfa2-0990-bf4a-5da9abb51763"],
                ),
            ],
            rename_by_default=True,
            fail_requests_greater_than_one=True,
        )
    ),
    imex=Imex(channel_ids=[0], required=True),
)


def test_full_yaml(tmp_path: Path) -> None:
    assert _load(tmp_path, FULL_YAML) == FULL_CONFIG


def test_same_document_as_json(tmp_path: Path) -> None:
    import yaml

    text = json.dumps(yaml.safe_load(FULL_YAML), indent="\t")  # tabs: PyYAML alone refuses
    assert _load(tmp_path, text, "config.json") == FULL_CONFIG


def test_json_needs_no_yaml(tmp_path: Path) -> None:
    assert parse_config_data(b'{"version": "v1"}') == Config()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("", Config(), id="empty-file"),
        pytest.param("version: v1\n", Config(), id="version-only"),
        pytest.param('version: ""\n', Config(), id="empty-version-is-v1"),
        pytest.param("version:\n", Config(), id="null-version-is-v1"),
        pytest.param("flags:\nsharing:\nimex:\n", Config(), id="null-sections"),
        pytest.param(
            "flags: {migStrategy: null, failOnInitError: null, gfd: {sleepInterval: null}}\n",
            Config(),
            id="null-fields-keep-defaults",
        ),
        pytest.param("sharing: {mps: null}\n", Config(), id="null-mps-is-absent"),
        pytest.param(
            "flags: {MigStrategy: single, FAILONINITERROR: false, gfd: {OneShot: true}}\n",
            Config(
                flags=Flags(
                    mig_strategy="single", fail_on_init_error=False, gfd=GfdFlags(oneshot=True)
                )
            ),
            id="plain-keys-case-insensitive",
        ),
        pytest.param(
            "flags: {MigStrategy: mixed, migStrategy: single}\n",
            Config(flags=Flags(mig_strategy="single")),
            id="case-variants-last-in-sorted-order-wins",
        ),
        pytest.param(
            "flags: {migStrategy: 123, plugin: {nvidiaCTKPath: true, cdiAnnotationPrefix: 1.5}}\n",
            Config(
                flags=Flags(
                    mig_strategy="123",
                    plugin=PluginFlags(nvidia_ctk_path="true", cdi_annotation_prefix="1.5"),
                )
            ),
            id="scalars-become-strings",
        ),
        pytest.param(
            "flags: {mpsRoot: 2024-01-01}\n",
            Config(flags=Flags(mps_root="2024-01-01")),
            id="no-yaml-timestamps",
        ),
        pytest.param(
            "flags: {gfd: {sleepInterval: 5}}\n",
            Config(flags=Flags(gfd=GfdFlags(sleep_interval=Duration(5)))),
            id="number-is-nanoseconds",
        ),
        pytest.param(
            "flags: {gfd: {sleepInterval: 1.9}}\n",
            Config(flags=Flags(gfd=GfdFlags(sleep_interval=Duration(1)))),
            id="fractional-number-truncates",
        ),
        pytest.param(
            "flags: {gfd: {sleepInterval: infinite}}\n",
            Config(flags=Flags(gfd=GfdFlags(sleep_interval=Duration(None)))),
            id="infinite",
        ),
        pytest.param(
            "flags: {gfd: {sleepInterval: '0'}}\n",
            Config(flags=Flags(gfd=GfdFlags(sleep_interval=Duration(0)))),
            id="bare-zero-string",
        ),
        pytest.param(
            "flags: {useNodeFeatureAPI: auto}\n",
            Config(flags=Flags(use_node_feature_api="auto")),
            id="use-node-feature-api-auto",
        ),
        pytest.param(
            "flags: {useNodeFeatureAPI: true}\n",
            Config(flags=Flags(use_node_feature_api="true")),
            id="use-node-feature-api-bool",
        ),
        pytest.param(
            "flags: {plugin: {deviceListStrategy: volume-mounts}}\n",
            Config(flags=Flags(plugin=PluginFlags(device_list_strategy=["volume-mounts"]))),
            id="device-list-strategy-string",
        ),
        pytest.param(
            "imex: {channelIDs: [0, null]}\n",
            Config(imex=Imex(channel_ids=[0, 0])),
            id="null-channel-id-is-zero",
        ),
        pytest.param(
            "resources: {mig: [{pattern: null, name: mig-1g.5gb}]}\n",
            Config(resources=Resources(mig=[Resource("", "nvidia.com/mig-1g.5gb")])),
            id="null-pattern-is-empty",
        ),
    ],
)
def test_good_documents(tmp_path: Path, text: str, expected: Config) -> None:
    assert _load(tmp_path, text) == expected


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        pytest.param("{name: gpu, replicas: 2}", ReplicatedResource(GPU, 2), id="short-name"),
        pytest.param(
            "{name: nvidia.com/mig-1g.5gb, replicas: 3}",
            ReplicatedResource("nvidia.com/mig-1g.5gb", 3),
            id="full-name",
        ),
        pytest.param(
            "{name: gpu, replicas: 2, rename: gpu.shared}",
            ReplicatedResource(GPU, 2, rename=GPU + ".shared"),
            id="rename-qualified",
        ),
        pytest.param(
            "{name: gpu, replicas: 2, devices: all}", ReplicatedResource(GPU, 2), id="devices-all"
        ),
        pytest.param(
            "{name: gpu, replicas: 2, devices: 3}",
            ReplicatedResource(GPU, 2, devices=3),
            id="devices-count",
        ),
        pytest.param(
            "{name: gpu, replicas: 2, devices: [0, '1', '2:3', null,"
            " MIG-b1028956-cfa2-0990-bf4a-5da9abb51763,"
            " MIG-GPU-b1028956-cfa2-0990-bf4a-5da9abb51763/3/0,"
            " GPU-B1028956CFA20990BF4A5DA9ABB51763,"
            " 'GPU-{b1028956-cfa2-0990-bf4a-5da9abb51763}',"
            " GPU-urn:uuid:b1028956-cfa2-0990-bf4a-5da9abb51763]}",
            ReplicatedResource(
                GPU,
                2,
                devices=[
                    "0",
                    "1",
                    "2:3",
                    "0",  # Go decodes null into a uint as 0
                    "MIG-b1028956-cfa2-0990-bf4a-5da9abb51763",
                    "MIG-GPU-b1028956-cfa2-0990-bf4a-5da9abb51763/3/0",
                    "GPU-B1028956CFA20990BF4A5DA9ABB51763",
                    "GPU-{b1028956-cfa2-0990-bf4a-5da9abb51763}",
                    "GPU-urn:uuid:b1028956-cfa2-0990-bf4a-5da9abb51763",
                ],
            ),
            id="devices-list-every-form",
        ),
        pytest.param(
            "{name: gpu, replicas: 2, unknown: x}", ReplicatedResource(GPU, 2), id="unknown-key"
        ),
    ],
)
def test_replicated_entries(tmp_path: Path, entry: str, expected: ReplicatedResource) -> None:
    config = _load(tmp_path, f"sharing: {{timeSlicing: {{resources: [{entry}]}}}}\n")
    assert config.sharing.time_slicing == ReplicatedResources(resources=[expected])


def test_rename_by_default_fills_only_empty_renames(tmp_path: Path) -> None:
    config = _load(
        tmp_path,
        "sharing:\n  mps:\n    renameByDefault: true\n    resources:\n"
        "    - {name: gpu, replicas: 2}\n    - {name: mig-1g.5gb, replicas: 2, rename: custom}\n",
    )
    assert config.sharing.mps == ReplicatedResources(
        resources=[
            ReplicatedResource(GPU, 2, rename=GPU + ".shared"),
            ReplicatedResource("nvidia.com/mig-1g.5gb", 2, rename="nvidia.com/custom"),
        ],
        rename_by_default=True,
    )


def _bad_cases() -> list[object]:
    cases = []
    for path in sorted(BAD_CONFIGS.iterdir()):
        if path.suffix == ".json":
            doc = json.loads(path.read_text())
            expect, field = doc["_expect"], doc["_path"]
        else:
            head = path.read_text().splitlines()[:2]
            assert head[0].startswith("# expect: ") and head[1].startswith("# path: "), path
            expect, field = head[0].removeprefix("# expect: "), head[1].removeprefix("# path: ")
        cases.append(pytest.param(path, expect, field, id=path.name))
    return cases


@pytest.mark.parametrize(("path", "expect", "field"), _bad_cases())
def test_bad_config(path: Path, expect: str, field: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_file(str(path))
    assert str(caught.value) == f"{FILE_ERROR_PREFIX}: {expect}"
    assert caught.value.path == field


def test_bad_config_corpus_has_one_file_per_fault() -> None:
    names = [p.name for p in BAD_CONFIGS.iterdir()]
    assert len(names) >= 40
    assert all(p.endswith((".yaml", ".json")) for p in names)


def test_upstream_reason_is_kept_apart_from_the_wrapping() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_file(str(BAD_CONFIGS / "replicas-one.yaml"))
    err = caught.value
    assert (err.path, err.value, err.reason) == (
        "sharing.timeSlicing.resources[0].replicas",
        1,
        "number of replicas must be >= 2",
    )
    assert isinstance(err.__cause__, ConfigError)


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError) as caught:
        parse_config_file(str(missing))
    assert str(caught.value) == (
        f"{FILE_ERROR_PREFIX}: error opening config file: open {missing}: no such file or directory"
    )
    assert caught.value.path == str(missing)


def test_directory_fails_on_read_as_in_go(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_file(str(tmp_path))
    assert str(caught.value) == (
        f"{FILE_ERROR_PREFIX}: error parsing config file: read error: read {tmp_path}:"
        " is a directory"
    )


def test_version_checked_after_the_rest(tmp_path: Path) -> None:
    # Upstream decodes everything first, so a bad section wins over a bad version.
    with pytest.raises(ConfigError, match="no resources specified"):
        _load(tmp_path, "version: v2\nsharing: {timeSlicing: {}}\n")


RENAME_WARNING = (
    "Setting the 'rename' field in sharing.{}.resources is not yet supported in the config."
    " Ignoring..."
)
DEVICES_WARNING = (
    "Customizing the 'devices' field in sharing.{}.resources is not yet supported in the"
    " config. Ignoring..."
)
RESOURCES_WARNING = (
    "Customizing the 'resources' field is not yet supported in the config. Ignoring..."
)


def _shared(*entries: ReplicatedResource, by_default: bool = False) -> ReplicatedResources:
    return ReplicatedResources(resources=list(entries), rename_by_default=by_default)


@pytest.mark.parametrize(
    ("config", "expected", "warnings"),
    [
        pytest.param(Config(), Config(), [], id="nothing-to-do"),
        pytest.param(
            Config(resources=Resources(gpus=[Resource("*", GPU)])),
            Config(),
            [RESOURCES_WARNING],
            id="resources-emptied",
        ),
        pytest.param(
            Config(resources=Resources(mig=[Resource("*", "nvidia.com/mig")])),
            Config(),
            [RESOURCES_WARNING],
            id="mig-resources-emptied",
        ),
        pytest.param(
            Config(sharing=Sharing(time_slicing=_shared(ReplicatedResource(GPU, 2, rename="x")))),
            Config(sharing=Sharing(time_slicing=_shared(ReplicatedResource(GPU, 2)))),
            [RENAME_WARNING.format("timeSlicing")],
            id="rename-cleared",
        ),
        pytest.param(
            Config(
                sharing=Sharing(
                    mps=_shared(ReplicatedResource(GPU, 2, rename="x"), by_default=True)
                )
            ),
            Config(
                sharing=Sharing(
                    mps=ReplicatedResources(
                        resources=[ReplicatedResource(GPU, 2, rename=GPU + ".shared")],
                        rename_by_default=True,
                        fail_requests_greater_than_one=True,
                    )
                )
            ),
            [RENAME_WARNING.format("mps")],
            id="rename-forced-to-shared",
        ),
        pytest.param(
            Config(
                sharing=Sharing(time_slicing=_shared(ReplicatedResource(GPU, 2), by_default=True))
            ),
            Config(
                sharing=Sharing(
                    time_slicing=_shared(
                        ReplicatedResource(GPU, 2, rename=GPU + ".shared"), by_default=True
                    )
                )
            ),
            [],
            id="empty-rename-filled-silently",
        ),
        pytest.param(
            Config(
                sharing=Sharing(
                    time_slicing=_shared(
                        ReplicatedResource(GPU, 2, devices=2),
                        ReplicatedResource("nvidia.com/mig", 2, devices=["0"], rename="y"),
                    )
                )
            ),
            Config(
                sharing=Sharing(
                    time_slicing=_shared(
                        ReplicatedResource(GPU, 2), ReplicatedResource("nvidia.com/mig", 2)
                    )
                )
            ),
            [RENAME_WARNING.format("timeSlicing"), DEVICES_WARNING.format("timeSlicing")],
            id="devices-forced-to-all-one-warning-per-kind",
        ),
        pytest.param(
            Config(
                sharing=Sharing(
                    mps=ReplicatedResources(
                        resources=[ReplicatedResource(GPU, 2)],
                        fail_requests_greater_than_one=False,
                    )
                )
            ),
            Config(
                sharing=Sharing(
                    mps=ReplicatedResources(
                        resources=[ReplicatedResource(GPU, 2)],
                        fail_requests_greater_than_one=False,
                    )
                )
            ),
            [],
            id="explicit-mps-fail-requests-kept",
        ),
        pytest.param(
            Config(sharing=Sharing(time_slicing=_shared(ReplicatedResource(GPU, 2)))),
            Config(sharing=Sharing(time_slicing=_shared(ReplicatedResource(GPU, 2)))),
            [],
            id="time-slicing-fail-requests-stays-unset",
        ),
        pytest.param(
            Config(flags=Flags(nvidia_driver_root="/run/nvidia/driver")),
            Config(
                flags=Flags(
                    nvidia_driver_root="/run/nvidia/driver", nvidia_dev_root="/run/nvidia/driver"
                )
            ),
            [],
            id="dev-root-follows-driver-root",
        ),
        pytest.param(
            Config(flags=Flags(nvidia_driver_root="/d", nvidia_dev_root="")),
            Config(flags=Flags(nvidia_driver_root="/d", nvidia_dev_root="/d")),
            [],
            id="empty-dev-root-follows-driver-root",
        ),
        pytest.param(
            Config(flags=Flags(nvidia_driver_root="/d", nvidia_dev_root="/dev-root")),
            Config(flags=Flags(nvidia_driver_root="/d", nvidia_dev_root="/dev-root")),
            [],
            id="explicit-dev-root-kept",
        ),
    ],
)
def test_normalise(config: Config, expected: Config, warnings: list[str]) -> None:
    assert normalise(config) == warnings
    assert config == expected
    assert normalise(config) == []  # idempotent
    assert config == expected


def test_mps_fail_requests_defaults_to_true() -> None:
    config = Config(sharing=Sharing(mps=_shared(ReplicatedResource(GPU, 2))))
    normalise(config)
    assert config.sharing.mps is not None
    assert config.sharing.mps.fail_requests_greater_than_one is True


def test_warning_order_across_sections() -> None:
    config = Config(
        resources=Resources(gpus=[Resource("*", GPU)]),
        sharing=Sharing(
            time_slicing=_shared(ReplicatedResource(GPU, 2, devices=1)),
            mps=_shared(ReplicatedResource(GPU, 2, rename="z", devices=1)),
        ),
    )
    assert normalise(config) == [
        RESOURCES_WARNING,
        DEVICES_WARNING.format("timeSlicing"),
        RENAME_WARNING.format("mps"),
        DEVICES_WARNING.format("mps"),
    ]
