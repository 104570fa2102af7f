"""config-manager's flags and environment (configmanager/cli.py): upstream's names and
defaults, command line over environment, and each refusal with its message."""

from __future__ import annotations

from typing import Any

import pytest

from configmanager.cli import FLAGS, Settings, parse, usage
from nvlib.config import ConfigError

REQUIRED = {"NODE_NAME": "node-1", "CONFIG_FILE_SRCDIR": "/available-configs",
            "CONFIG_FILE_DST": "/config/config.yaml"}  # fmt: skip
DEFAULTS = Settings(
    oneshot=False, kubeconfig="", node_name="node-1",
    node_label="nvidia.com/device-plugin.config", config_file_srcdir="/available-configs",
    config_file_dst="/config/config.yaml", default_config="", fallback_strategies=(),
    send_signal=True, signal=1, process_to_signal="nvidia-device-plugin", heartbeat_file="",
)  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "environ", "changed"),
    [
        pytest.param([], {}, {}, id="defaults"),
        # the chart's init container, as upstream's chart writes it
        pytest.param([], {"ONESHOT": "true", "KUBECONFIG": "", "SEND_SIGNAL": "false",
                          "SIGNAL": "", "PROCESS_TO_SIGNAL": "", "DEFAULT_CONFIG": "",
                          "FALLBACK_STRATEGIES": "named,single"},
                     {"oneshot": True, "send_signal": False, "process_to_signal": "",
                      "fallback_strategies": ("named", "single")}, id="init-container"),
        # the sidecar next to GFD
        pytest.param([], {"ONESHOT": "false", "SEND_SIGNAL": "true", "SIGNAL": "1",
                          "PROCESS_TO_SIGNAL": "gpu-feature-discovery",
                          "DEFAULT_CONFIG": "a100", "FALLBACK_STRATEGIES": "empty"},
                     {"process_to_signal": "gpu-feature-discovery", "default_config": "a100",
                      "fallback_strategies": ("empty",)}, id="gfd-sidecar"),
        pytest.param(["--node-label", "example.com/cfg", "--signal=15", "--oneshot"],
                     {"NODE_LABEL": "ignored", "SIGNAL": "2"},
                     {"node_label": "example.com/cfg", "signal": 15, "oneshot": True},
                     id="flags-beat-env"),
        pytest.param(["--fallback-strategies", "named", "--fallback-strategies=single,empty"], {},
                     {"fallback_strategies": ("named", "single", "empty")}, id="repeated-list"),
        pytest.param(["-kubeconfig", "/k"], {"CONFIG_MANAGER_HEARTBEAT_FILE": "/hb/cm"},
                     {"kubeconfig": "/k", "heartbeat_file": "/hb/cm"}, id="go-style-and-heartbeat"),
    ],
)  # fmt: skip
def test_parse(argv: list[str], environ: dict[str, str], changed: dict[str, Any]) -> None:
    assert parse(argv, {**REQUIRED, **environ}) == DEFAULTS._replace(**changed)


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        pytest.param([], {"NODE_NAME": ""}, "invalid <node-name>: must not be empty string",
                     id="node-name"),
        pytest.param(["--node-label="], {}, "invalid <node-label>: must not be empty string",
                     id="node-label"),
        pytest.param([], {"CONFIG_FILE_SRCDIR": ""},
                     "invalid <config-file-srcdir>: must not be empty string", id="srcdir"),
        pytest.param([], {"CONFIG_FILE_DST": ""},
                     "invalid <config-file-dst>: must not be empty string", id="dst"),
        pytest.param(["--oneshot", "--heartbeat-file=/hb"], {},
                     "--heartbeat-file: a one-shot run has no loop to prove alive",
                     id="heartbeat-oneshot"),
        pytest.param(["--signal=0"], {}, "--signal: not a signal number (got 0)", id="signal-0"),
        pytest.param(["--signal=999"], {}, "--signal: not a signal number (got 999)",
                     id="signal-999"),
        pytest.param([], {"SIGNAL": "HUP"}, "SIGNAL", id="signal-name-not-a-number"),
        pytest.param([], {"ONESHOT": "maybe"}, "ONESHOT", id="bool-env"),
        pytest.param(["--no-such"], {}, "flag provided but not defined", id="unknown-flag"),
        pytest.param(["node-1"], {}, "takes only flags", id="positional"),
    ],
)  # fmt: skip
def test_refused(argv: list[str], environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse(argv, {**REQUIRED, **environ})
    assert message in str(caught.value)


def test_a_signal_is_not_checked_when_none_is_sent() -> None:
    assert parse(["--send-signal=false", "--signal=0"], REQUIRED).signal == 0


def test_version_needs_nothing_else() -> None:
    assert parse(["--version"], {}).show_version


def test_help_lists_every_flag_and_variable(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        parse(["-h"], {})
    assert caught.value.code == 0
    out = capsys.readouterr().out
    assert out == usage()
    for flag in FLAGS:
        assert f"--{flag.name}" in out
        for var in flag.envs:
            assert f"${var}" in out
