"""The gpu-feature-discovery command line (docs/config.md#precedence).

Matrix: for every option that the config file can also set, the precedence ladder default
< file < each environment variable < command line, and first variable wins; for the
options with no file key, default < environment < command line; every Go boolean form on
the command line and in the environment; aliases; the output-file "explicit" rule
(docs/labels-output.md#choosing-the-output); the start-up validation (discovery strategy
only); errors with upstream's texts; help and version; normalisation after merging; and
that parsing imports nothing heavy (yaml only for a YAML file).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from gfd.cli import FLAGS, GfdSettings, parse, usage
from nvlib.config import FILE_ERROR_PREFIX, ConfigError, Duration

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Option:
    """One option's ladder: a value for each source, each different from the others."""

    get: Callable[[GfdSettings], object]
    default: object
    file: str | None  # a YAML document setting it, or None if no file key exists
    file_value: object
    envs: tuple[tuple[str, str, object], ...]  # (variable, text, value), in precedence order
    cli: tuple[str, ...]
    cli_value: object


OPTIONS = {
    "mig-strategy": Option(
        lambda s: s.config.flags.mig_strategy, "none",
        "flags: {migStrategy: single}", "single",
        (("GFD_MIG_STRATEGY", "mixed", "mixed"), ("MIG_STRATEGY", "bogus", "bogus")),
        ("--mig-strategy", "none"), "none",
    ),
    "fail-on-init-error": Option(
        lambda s: s.config.flags.fail_on_init_error, True,
        "flags: {failOnInitError: false}", False,
        (("GFD_FAIL_ON_INIT_ERROR", "T", True), ("FAIL_ON_INIT_ERROR", "0", False)),
        ("--fail-on-init-error=false",), False,
    ),
    "oneshot": Option(
        lambda s: s.config.flags.gfd.oneshot, False,
        "flags: {gfd: {oneshot: true}}", True,
        (("GFD_ONESHOT", "false", False),),
        ("--oneshot",), True,
    ),
    "no-timestamp": Option(
        lambda s: s.config.flags.gfd.no_timestamp, False,
        "flags: {gfd: {noTimestamp: true}}", True,
        (("GFD_NO_TIMESTAMP", "", False),),
        ("-no-timestamp",), True,
    ),
    "sleep-interval": Option(
        lambda s: s.config.flags.gfd.sleep_interval, Duration(60_000_000_000),
        "flags: {gfd: {sleepInterval: 90s}}", Duration(90_000_000_000),
        (("GFD_SLEEP_INTERVAL", "2m", Duration(120_000_000_000)),),
        ("--sleep-interval", "infinite"), Duration(None),
    ),
    "output-file": Option(
        lambda s: s.config.flags.gfd.output_file,
        "/etc/kubernetes/node-feature-discovery/features.d/gfd",
        "flags: {gfd: {outputFile: /from/file}}", "/from/file",
        (("GFD_OUTPUT_FILE", "/from/env", "/from/env"),),
        ("-o", "-"), "-",
    ),
    "machine-type-file": Option(
        lambda s: s.config.flags.gfd.machine_type_file, "/sys/class/dmi/id/product_name",
        "flags: {gfd: {machineTypeFile: /from/file}}", "/from/file",
        (("GFD_MACHINE_TYPE_FILE", "/from/env", "/from/env"),),
        ("--machine-type-file=/from/cli",), "/from/cli",
    ),
    "use-node-feature-api": Option(
        lambda s: s.config.flags.use_node_feature_api, "auto",
        "flags: {useNodeFeatureAPI: true}", "true",
        (("GFD_USE_NODE_FEATURE_API", "auto", "auto"), ("USE_NODE_FEATURE_API", "f", "false")),
        ("--use-node-feature-api", "false"), "false",
    ),
    "device-discovery-strategy": Option(
        lambda s: s.config.flags.device_discovery_strategy, "auto",
        "flags: {deviceDiscoveryStrategy: nvml}", "nvml",
        (("DEVICE_DISCOVERY_STRATEGY", "auto", "auto"),),
        ("--device-discovery-strategy=nvml",), "nvml",
    ),
    "driver-root-ctr-path": Option(
        lambda s: s.config.flags.plugin.container_driver_root, "/driver-root",
        "flags: {plugin: {containerDriverRoot: /from/file}}", "/from/file",
        (("DRIVER_ROOT_CTR_PATH", "/env1", "/env1"), ("CONTAINER_DRIVER_ROOT", "/env2", "/env2")),
        ("--container-driver-root", "/from/cli"), "/from/cli",
    ),
    "kubeconfig": Option(
        lambda s: s.kubeconfig, "", None, None,
        (("KUBECONFIG", "/env/kubeconfig", "/env/kubeconfig"),),
        ("--kubeconfig", "/cli/kubeconfig"), "/cli/kubeconfig",
    ),
    "kube-api-qps": Option(
        lambda s: s.kube_api_qps, 5.0, None, None,
        (("KUBE_API_QPS", "7.5", 7.5),),
        ("--kube-api-qps=20",), 20.0,
    ),
    "kube-api-burst": Option(
        lambda s: s.kube_api_burst, 10, None, None,
        (("KUBE_API_BURST", "30", 30),),
        ("--kube-api-burst", "40"), 40,
    ),
    "namespace": Option(
        lambda s: s.namespace, "default", None, None,
        (("NAMESPACE", "gpu-operator", "gpu-operator"),),
        ("--namespace=nfd",), "nfd",
    ),
    "node-name": Option(
        lambda s: s.node_name, "", None, None,
        (("NODE_NAME", "node-a", "node-a"),),
        ("--node-name", "node-b"), "node-b",
    ),
    "pod-name": Option(
        lambda s: s.pod_name, "", None, None,
        (("POD_NAME", "gfd-abc", "gfd-abc"),),
        ("--pod-name=gfd-xyz",), "gfd-xyz",
    ),
    "heartbeat-file": Option(
        lambda s: s.heartbeat_file, "", None, None,
        (("GFD_HEARTBEAT_FILE", "/run/env-hb", "/run/env-hb"),),
        ("--heartbeat-file=/run/cli-hb",), "/run/cli-hb",
    ),
    "label-templates": Option(
        lambda s: s.config.flags.gfd.label_templates, "",
        "flags: {gfd: {labelTemplates: /from/file}}", "/from/file",
        (("GFD_LABEL_TEMPLATES", "builtin", "builtin"),),
        ("--label-templates", "/from/cli"), "/from/cli",
    ),
    "label-template-namespaces": Option(
        lambda s: s.config.flags.gfd.label_template_namespaces, [],
        "flags: {gfd: {labelTemplateNamespaces: [file.example]}}", ["file.example"],
        (("GFD_LABEL_TEMPLATE_NAMESPACES", "a.example, feature.node.kubernetes.io",
          ["a.example", "feature.node.kubernetes.io"]),),
        ("--label-template-namespaces=cli.example",), ["cli.example"],
    ),
    "label-expiry": Option(
        lambda s: s.config.flags.gfd.label_expiry, 0,
        "flags: {gfd: {labelExpiry: 3}}", 3,
        (("GFD_LABEL_EXPIRY", "4", 4),),
        ("--label-expiry", "5"), 5,
    ),
    "metrics-address": Option(
        lambda s: s.metrics_address, "", None, None,
        (("GFD_METRICS_ADDRESS", ":9411", ":9411"),),
        ("--metrics-address=127.0.0.1:9500",), "127.0.0.1:9500",
    ),
    "nvml-mock": Option(
        lambda s: s.nvml_mock, None, None, None,
        (("NVML_MOCK", "t4", "t4"),),
        ("--nvml-mock", "dgx-a100"), "dgx-a100",
    ),
}  # fmt: skip


def _ladder() -> list[object]:
    """(option, file?, env vars set, command line?, expected) for every rung."""
    cases = []
    for name, opt in OPTIONS.items():
        first_env = opt.envs[0]
        cases.append(pytest.param(name, False, (), False, opt.default, id=f"{name}-default"))
        if opt.file is not None:
            cases.append(pytest.param(name, True, (), False, opt.file_value, id=f"{name}-file"))
        for env in opt.envs:
            cases.append(
                pytest.param(name, True, (env,), False, env[2], id=f"{name}-{env[0]}-over-file")
            )
        if len(opt.envs) > 1:
            cases.append(
                pytest.param(name, True, opt.envs, False, first_env[2], id=f"{name}-first-env")
            )
        cases.append(pytest.param(name, True, opt.envs, True, opt.cli_value, id=f"{name}-cli"))
    return cases


@pytest.mark.parametrize(("name", "use_file", "envs", "use_cli", "expected"), _ladder())
def test_precedence(
    tmp_path: Path,
    name: str,
    use_file: bool,
    envs: tuple[tuple[str, str, object], ...],
    use_cli: bool,
    expected: object,
) -> None:
    opt = OPTIONS[name]
    argv: list[str] = list(opt.cli) if use_cli else []
    if use_file and opt.file is not None:
        config_file = tmp_path / "config.yaml"
        config_file.write_text(f"version: v1\n{opt.file}\n")
        argv += ["--config-file", str(config_file)]
    settings = parse(argv, {var: text for var, text, _ in envs})
    assert opt.get(settings) == expected


def test_every_flag_has_a_ladder() -> None:
    assert set(OPTIONS) | {"config-file", "help", "version"} == {f.name for f in FLAGS}


@pytest.mark.parametrize(
    ("argv", "environ", "expected"),
    [
        pytest.param([], {}, "", id="none"),
        pytest.param([], {"CONFIG_FILE": "b"}, "b", id="CONFIG_FILE"),
        pytest.param([], {"GFD_CONFIG_FILE": "a", "CONFIG_FILE": "b"}, "a", id="first-env-wins"),
        pytest.param(["--config-file=c"], {"GFD_CONFIG_FILE": "a"}, "c", id="cli-wins"),
    ],
)
def test_config_file_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], environ: dict[str, str],
    expected: str,
) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    for name, strategy in (("a", "single"), ("b", "mixed"), ("c", "bogus")):
        (tmp_path / name).write_text(f"flags: {{migStrategy: {strategy}}}\n")
    settings = parse(argv, environ)
    assert settings.config_file == expected
    wanted = {"": "none", "a": "single", "b": "mixed", "c": "bogus"}[expected]
    assert settings.config.flags.mig_strategy == wanted


@pytest.mark.parametrize(
    ("text", "value"),
    [(t, True) for t in ("1", "t", "T", "TRUE", "true", "True")]
    + [(f, False) for f in ("0", "f", "F", "FALSE", "false", "False")],
)
def test_every_go_bool_form(text: str, value: bool) -> None:
    assert parse([f"--oneshot={text}"], {}).config.flags.gfd.oneshot is value
    assert parse([], {"GFD_ONESHOT": text}).config.flags.gfd.oneshot is value
    assert parse([f"-no-timestamp={text}"], {}).config.flags.gfd.no_timestamp is value
    assert parse([], {"FAIL_ON_INIT_ERROR": text}).config.flags.fail_on_init_error is value


@pytest.mark.parametrize(
    ("argv", "environ", "explicit", "path"),
    [
        pytest.param([], {}, False, "/etc/kubernetes/node-feature-discovery/features.d/gfd",
                     id="default"),
        pytest.param(["-o", "/x"], {}, True, "/x", id="short"),
        pytest.param(["--output", "/x"], {}, True, "/x", id="alias"),
        pytest.param(["-output-file=/x"], {}, True, "/x", id="single-dash-long"),
        pytest.param([], {"GFD_OUTPUT_FILE": "/x"}, True, "/x", id="env"),
        pytest.param([], {"GFD_OUTPUT_FILE": ""}, True, "", id="env-empty-is-stdout"),
    ],
)  # fmt: skip
def test_output_file_explicit(
    argv: list[str], environ: dict[str, str], explicit: bool, path: str
) -> None:
    settings = parse(argv, environ)
    assert (settings.output_file_explicit, settings.config.flags.gfd.output_file) == (
        explicit,
        path,
    )


def test_output_file_from_config_file_is_not_explicit(tmp_path: Path) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text("flags: {gfd: {outputFile: /x}}\n")
    settings = parse(["--config-file", str(config_file)], {})
    assert (settings.output_file_explicit, settings.config.flags.gfd.output_file) == (False, "/x")


def test_empty_nvml_mock_means_none() -> None:
    assert parse([], {"NVML_MOCK": ""}).nvml_mock is None


def test_mig_strategy_is_not_validated_at_start() -> None:
    # The labeler rejects it, and only when there are devices, as upstream's.
    assert parse(["--mig-strategy=bogus"], {}).config.flags.mig_strategy == "bogus"


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        pytest.param(["--device-discovery-strategy=tegra"], {},
                     "unable to load config: unable to validate flags: invalid"
                     " --device-discovery-strategy option tegra: not supported", id="tegra"),
        pytest.param([], {"DEVICE_DISCOVERY_STRATEGY": "vfio"},
                     "unable to load config: unable to validate flags: invalid"
                     " --device-discovery-strategy option vfio: not supported", id="vfio-env"),
        pytest.param(["--device-discovery-strategy", "cuda"], {},
                     "unable to load config: unable to validate flags: invalid"
                     " --device-discovery-strategy option cuda", id="other"),
        pytest.param([], {"GFD_ONESHOT": "maybe"},
                     'could not parse "maybe" as bool value from env var "GFD_ONESHOT" for flag'
                     ' oneshot: strconv.ParseBool: parsing "maybe": invalid syntax',
                     id="env-bool"),
        pytest.param([], {"GFD_USE_NODE_FEATURE_API": "sometimes"},
                     'could not parse "sometimes" as bool value from env var'
                     ' "GFD_USE_NODE_FEATURE_API" for flag use-node-feature-api:'
                     ' strconv.ParseBool: parsing "sometimes": invalid syntax',
                     id="env-use-node-feature-api"),
        pytest.param([], {"GFD_SLEEP_INTERVAL": "5"},
                     'could not parse "5" as duration value from env var "GFD_SLEEP_INTERVAL"'
                     ' for flag sleep-interval: time: missing unit in duration "5"',
                     id="env-duration"),
        pytest.param(["--sleep-interval=5"], {},
                     "--sleep-interval: time: missing unit in duration \"5\" (got '5')",
                     id="cli-duration"),
        pytest.param(["--oneshot=yes"], {},
                     "--oneshot: strconv.ParseBool: parsing \"yes\": invalid syntax (got 'yes')",
                     id="cli-bool"),
        pytest.param(["--use-node-feature-api=maybe"], {},
                     "--use-node-feature-api: strconv.ParseBool: parsing \"maybe\": invalid"
                     " syntax (got 'maybe')", id="cli-use-node-feature-api"),
        pytest.param(["--kube-api-burst=lots"], {},
                     "--kube-api-burst: strconv.ParseInt: parsing \"lots\": invalid syntax"
                     " (got 'lots')", id="cli-int"),
        pytest.param(["--labels"], {},
                     "--labels: flag provided but not defined (got '--labels')", id="unknown"),
        pytest.param(["--oneshot", "true"], {},
                     "true: unexpected argument: gpu-feature-discovery takes only flags (write"
                     " --flag=false for a boolean) (got 'true')", id="positional"),
        pytest.param(["--oneshot"], {"GFD_HEARTBEAT_FILE": "/run/hb"},
                     "--heartbeat-file: a one-shot run has no loop to prove alive"
                     " (got '/run/hb')", id="heartbeat-oneshot"),
        pytest.param(["--machine-type-file"], {},
                     "--machine-type-file: flag needs an argument (got '--machine-type-file')",
                     id="missing-value"),
        pytest.param(["--label-expiry=1"], {},
                     "--label-expiry: must be 0 (no expiry) or at least 2 sleep intervals: labels"
                     " that expire one interval ahead lapse whenever a pass runs late (got 1)",
                     id="expiry-one"),
        pytest.param([], {"GFD_LABEL_EXPIRY": "-3"},
                     "GFD_LABEL_EXPIRY: must be 0 (no expiry) or at least 2 sleep intervals:"
                     " labels that expire one interval ahead lapse whenever a pass runs late"
                     " (got -3)", id="expiry-negative-env"),
        pytest.param([], {"GFD_LABEL_EXPIRY": "three"},
                     'could not parse "three" as int value from env var "GFD_LABEL_EXPIRY" for'
                     ' flag label-expiry: strconv.ParseInt: parsing "three": invalid syntax',
                     id="expiry-env-word"),
        pytest.param(["--oneshot", "--label-expiry=3"], {},
                     "--label-expiry: a one-shot run never rewrites the file to renew it"
                     " (got 3)", id="expiry-oneshot"),
        pytest.param(["--sleep-interval=infinite", "--label-expiry=3"], {},
                     "--label-expiry: an infinite sleep interval never renews it (got 3)",
                     id="expiry-infinite"),
        pytest.param(["--use-node-feature-api=true", "--label-expiry=3"], {},
                     "--label-expiry: the expiry is a feature-file directive; a NodeFeature"
                     " object has none (got 3)", id="expiry-nodefeature"),
        pytest.param(["--label-template-namespaces=example.com,node.kubernetes.io"], {},
                     "--label-template-namespaces: not a label namespace NFD accepts: NFD"
                     " denies the kubernetes.io namespaces other than feature.node and"
                     " profile.node (got 'node.kubernetes.io')", id="namespace-denied"),
        pytest.param([], {"GFD_LABEL_TEMPLATE_NAMESPACES": "Example.com"},
                     "GFD_LABEL_TEMPLATE_NAMESPACES: not a label namespace NFD accepts: not a"
                     " DNS subdomain (lower-case letters, digits, '-' and '.') (got"
                     " 'Example.com')", id="namespace-upper-case"),
    ],
)  # fmt: skip
def test_errors(argv: list[str], environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(argv, environ)
    assert str(caught.value) == message


def test_config_file_error_keeps_upstream_wrapping(tmp_path: Path) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text("sharing: {timeSlicing: {resources: [{name: gpu, replicas: 1}]}}\n")
    with pytest.raises(ConfigError) as caught:
        parse(["--config-file", str(config_file)], {})
    assert str(caught.value) == (
        f"{FILE_ERROR_PREFIX}: error parsing config file: unmarshal error: error unmarshaling"
        " JSON: while decoding JSON: number of replicas must be >= 2"
    )
    assert caught.value.path == "sharing.timeSlicing.resources[0].replicas"


@pytest.mark.parametrize(
    ("document", "path", "message"),
    [
        pytest.param("flags: {gfd: {labelExpiry: 1}}", "flags.gfd.labelExpiry",
                     "flags.gfd.labelExpiry: must be 0 (no expiry) or at least 2 sleep"
                     " intervals: labels that expire one interval ahead lapse whenever a pass"
                     " runs late (got 1)", id="expiry-one"),
        pytest.param("flags: {gfd: {labelExpiry: '3'}}", "flags.gfd.labelExpiry",
                     f"{FILE_ERROR_PREFIX}: error parsing config file: unmarshal error: error"
                     " unmarshaling JSON: while decoding JSON: flags.gfd.labelExpiry: cannot"
                     " use a JSON string as an integer (got '3')", id="expiry-string"),
        pytest.param("flags: {gfd: {labelTemplateNamespaces: [kubernetes.io]}}",
                     "flags.gfd.labelTemplateNamespaces",
                     "flags.gfd.labelTemplateNamespaces: not a label namespace NFD accepts:"
                     " NFD denies the kubernetes.io namespaces other than feature.node and"
                     " profile.node (got 'kubernetes.io')", id="namespace-denied"),
        pytest.param("flags: {gfd: {labelTemplateNamespaces: [7]}}",
                     "flags.gfd.labelTemplateNamespaces[0]",
                     f"{FILE_ERROR_PREFIX}: error parsing config file: unmarshal error: error"
                     " unmarshaling JSON: while decoding JSON:"
                     " flags.gfd.labelTemplateNamespaces[0]: cannot use a JSON number as a"
                     " string (got 7)", id="namespace-number"),
        pytest.param("flags: {gfd: {labelTemplateNamespaces: example.com}}",
                     "flags.gfd.labelTemplateNamespaces",
                     f"{FILE_ERROR_PREFIX}: error parsing config file: unmarshal error: error"
                     " unmarshaling JSON: while decoding JSON:"
                     " flags.gfd.labelTemplateNamespaces: cannot use a JSON string as a list"
                     " (got 'example.com')", id="namespaces-not-a-list"),
    ],
)  # fmt: skip
def test_label_option_errors_in_the_config_file(
    tmp_path: Path, document: str, path: str, message: str
) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(f"version: v1\n{document}\n")
    with pytest.raises(ConfigError) as caught:
        parse(["--config-file", str(config_file)], {})
    assert (str(caught.value), caught.value.path) == (message, path)


@pytest.mark.parametrize(
    "namespace",
    ["example.com", "feature.node.kubernetes.io", "gpu.feature.node.kubernetes.io",
     "profile.node.kubernetes.io", "nvidia.com"],
)  # fmt: skip
def test_label_namespaces_nfd_accepts(namespace: str) -> None:
    settings = parse([f"--label-template-namespaces={namespace}"], {})
    assert settings.config.flags.gfd.label_template_namespaces == [namespace]


def test_label_options_logged_only_when_set() -> None:
    """A default run logs upstream's `flags.gfd`; the project's keys appear when set."""
    plain = json.loads(parse([], {}).config.to_json())["flags"]["gfd"]
    assert set(plain) == {
        "oneshot", "noTimestamp", "sleepInterval", "outputFile", "machineTypeFile"
    }  # fmt: skip
    argv = ["--label-templates=builtin", "--label-template-namespaces=a.example"]
    argv.append("--label-expiry=3")
    logged = json.loads(parse(argv, {}).config.to_json())["flags"]["gfd"]
    assert (logged["labelTemplates"], logged["labelTemplateNamespaces"], logged["labelExpiry"]) == (
        "builtin",
        ["a.example"],
        3,
    )


def test_file_discovery_strategy_is_validated_too(tmp_path: Path) -> None:
    config_file = tmp_path / "config.json"
    config_file.write_text('{"flags": {"deviceDiscoveryStrategy": "tegra"}}')
    with pytest.raises(ConfigError, match=r"option tegra: not supported$"):
        parse([], {"CONFIG_FILE": str(config_file)})


@pytest.mark.parametrize("flag", ["-h", "--help", "-help"])
def test_help(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse([flag], {"GFD_ONESHOT": "not-even-checked"})
    assert caught.value.code == 0
    out, err = capsys.readouterr()
    assert out == usage()
    assert err == ""
    for f in FLAGS:
        assert f"--{f.name}" in out
        for var in f.envs:
            assert f"${var}" in out


@pytest.mark.parametrize("flag", ["-v", "--version"])
def test_version_skips_the_config_file(tmp_path: Path, flag: str) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("version: v9\n")
    assert parse([flag, "--config-file", str(broken)], {}).show_version


def test_normalised_after_merging(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(
        "resources: {gpus: [{pattern: '*', name: gpu}]}\n"
        "sharing:\n  mps:\n    resources: [{name: gpu, replicas: 4, rename: mine, devices: 2}]\n"
    )
    with caplog.at_level(logging.WARNING, logger="gfd"):
        settings = parse(["--config-file", str(config_file)], {})
    assert settings.warnings == [
        "Customizing the 'resources' field is not yet supported in the config. Ignoring...",
        "Setting the 'rename' field in sharing.mps.resources is not yet supported in the"
        " config. Ignoring...",
        "Customizing the 'devices' field in sharing.mps.resources is not yet supported in the"
        " config. Ignoring...",
    ]
    assert [r.getMessage() for r in caplog.records] == settings.warnings
    doc = json.loads(settings.config.to_json())
    assert doc["resources"] == {"gpus": None}
    assert doc["sharing"]["mps"] == {
        "failRequestsGreaterThanOne": True,
        "resources": [{"name": "nvidia.com/gpu", "devices": "all", "replicas": 4}],
    }
    assert settings.config.sharing.sharing_strategy() == "mps"


def test_logged_config_reflects_the_merge() -> None:
    settings = parse(["--sleep-interval=90s", "--use-node-feature-api=false"], {})
    flags = json.loads(settings.config.to_json())["flags"]
    assert flags["gfd"]["sleepInterval"] == "1m30s"
    assert flags["useNodeFeatureAPI"] is False
    assert "nvidiaDriverRoot" not in flags  # GFD has no --driver-root: unset, omitted


_IMPORT_PROBE = """
import sys, gfd.cli
gfd.cli.parse(sys.argv[1:], {})
heavy = ("yaml", "kubernetes", "pynvml", "argparse", "jinja2")
print(",".join(m for m in heavy if m in sys.modules))
"""


@pytest.mark.parametrize(
    ("config_text", "suffix", "imported"),
    [
        pytest.param(None, "", "", id="no-config-file"),
        pytest.param('{"flags": {"migStrategy": "single"}}', ".json", "", id="json-config-file"),
        pytest.param("flags: {migStrategy: single}\n", ".yaml", "yaml", id="yaml-config-file"),
        # templates compile when the labeller is built, never while options are parsed
        pytest.param(
            '{"flags": {"gfd": {"labelTemplates": "builtin"}}}', ".json", "", id="label-templates"
        ),
    ],
)
def test_parsing_imports_nothing_heavy(
    tmp_path: Path, config_text: str | None, suffix: str, imported: str
) -> None:
    argv = ["--oneshot"]
    if config_text is not None:
        config_file = tmp_path / f"config{suffix}"
        config_file.write_text(config_text)
        argv += ["--config-file", str(config_file)]
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_PROBE, *argv],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={"PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"},
    )
    assert result.stdout.strip() == imported
