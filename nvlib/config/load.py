"""Reading a config file, and the normalisation every tool applies after merging.

Precedence (flag > environment > file > default) is applied by each command's own
flag table; see gfd/cli.py. This module owns the file half: read, parse, decode,
wrap errors as upstream does, and `normalise()` (docs/config.md).
"""

from __future__ import annotations

import functools
import json
import os

from nvlib.config._decode import decode_config
from nvlib.config.errors import ConfigError
from nvlib.config.names import shared_rename
from nvlib.config.schema import Config, ReplicatedResources

# What upstream's callers put in front of a config-file error, outermost first:
# loadConfig, then NewConfig.
FILE_ERROR_PREFIX = "unable to load config: unable to finalize config: unable to parse config file"
# Inside parseConfigFrom: sigs.k8s.io/yaml's two stages, below "unmarshal error".
_UNMARSHAL = "error parsing config file: unmarshal error"
_DECODE = f"{_UNMARSHAL}: error unmarshaling JSON: while decoding JSON"
_CONVERT = f"{_UNMARSHAL}: error converting YAML to JSON"


def _go_os_error(op: str, path: str, err: OSError) -> str:
    """Go's *PathError text: `open /x: no such file or directory` (errno text lower-cased)."""
    reason = os.strerror(err.errno) if err.errno else str(err)
    return f"{op} {path}: {reason[:1].lower()}{reason[1:]}"


def parse_config_file(path: str) -> Config:
    """Load a `version: v1` file (YAML or JSON; unknown keys ignored) with its checks.

    Every failure is a ConfigError whose text is upstream's whole chain, e.g.
    `unable to load config: unable to finalize config: unable to parse config file:
    error parsing config file: unmarshal error: error unmarshaling JSON: while decoding
    JSON: number of replicas must be >= 2`; its `.path` names the field.
    """
    try:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except IsADirectoryError as err:
            # Go opens a directory fine and fails on the read.
            raise ConfigError.upstream(
                path,
                path,
                f"error parsing config file: read error: {_go_os_error('read', path, err)}",
            ) from err
        except OSError as err:
            raise ConfigError.upstream(
                path, path, f"error opening config file: {_go_os_error('open', path, err)}"
            ) from err
        return parse_config_data(data)
    except ConfigError as err:
        located = err.wrapped(FILE_ERROR_PREFIX)
        located.file = path
        raise located from err


def parse_config_data(data: bytes) -> Config:
    """Parse and decode a config document; errors read from "error parsing config file"."""
    doc = _load_document(data)
    try:
        config = decode_config(doc)
    except ConfigError as err:
        if err.path == "version":  # the version check is outside the unmarshal step
            raise err.wrapped("error parsing config file") from err
        raise err.wrapped(_DECODE) from err
    return config


def _load_document(data: bytes) -> object:
    """The document as plain JSON values: dicts with str keys, lists, scalars, None.

    JSON is YAML, and upstream reads both with its YAML parser; we try the JSON parser
    first because it is faster, needs no import of yaml, and takes the tab-indented JSON
    that PyYAML's scanner rejects.
    """
    stripped = data.lstrip()
    if stripped[:1] in (b"{", b"["):
        try:
            return json.loads(data)
        except ValueError:
            pass  # not JSON after all: let the YAML parser have it, and report its error
    return _load_yaml(data)


def _load_yaml(data: bytes) -> object:
    import yaml  # only here: ~35 ms that a run without a YAML config file never pays

    try:
        doc = yaml.load(data, Loader=_yaml_loader())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        problem = getattr(err, "problem", None) or str(err)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ConfigError.upstream("config", None, f"{_CONVERT}: yaml: {where}{problem}") from err
    return _jsonify(doc)


@functools.cache
def _yaml_loader() -> type:
    """SafeLoader without the timestamp rule: upstream reads `2024-01-01` as a string."""
    import yaml

    rules = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return type("_ConfigLoader", (yaml.SafeLoader,), {"yaml_implicit_resolvers": rules})


def _key_text(key: object) -> str:
    """YAML keys may be any scalar; the YAML-to-JSON step writes them as JSON keys."""
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    return str(key)


def _jsonify(node: object) -> object:
    if isinstance(node, dict):
        return {_key_text(k): _jsonify(v) for k, v in node.items()}
    if isinstance(node, list | tuple):
        return [_jsonify(v) for v in node]
    if isinstance(node, bytes):  # !!binary: JSON has no bytes; keep the text form
        return node.decode("utf-8", "replace")
    return node


def normalise(config: Config) -> list[str]:
    """Apply the post-load rules every tool shares; return the warnings to log.

    In place and idempotent. Upstream turns the per-resource knobs off "for now"
    (docs/config.md#what-upstream-ignores-and-so-do-we), so this leaves only `name`,
    `replicas`, `renameByDefault` and `failRequestsGreaterThanOne` meaningful, and fills
    the defaults that depend on other fields.
    """
    warnings: list[str] = []
    if config.resources.gpus or config.resources.mig:
        warnings.append(
            "Customizing the 'resources' field is not yet supported in the config. Ignoring..."
        )
    config.resources.gpus = []
    config.resources.mig = []
    for key, section in (("timeSlicing", config.sharing.time_slicing), ("mps", config.sharing.mps)):
        if section is not None:
            warnings.extend(_neutralise(key, section))
    mps = config.sharing.mps
    if mps is not None and mps.fail_requests_greater_than_one is None:
        mps.fail_requests_greater_than_one = True
    if not config.flags.nvidia_dev_root:
        config.flags.nvidia_dev_root = config.flags.nvidia_driver_root
    return warnings


def _neutralise(key: str, section: ReplicatedResources) -> list[str]:
    renamed = devices = False
    for r in section.resources:
        wanted = shared_rename(r.name) if section.rename_by_default else ""
        if r.rename != wanted:
            # An empty rename under renameByDefault is what the loader itself fills in,
            # so only a rename the user wrote is worth a warning.
            renamed = renamed or bool(r.rename)
            r.rename = wanted
        if r.devices != "all":
            devices = True
            r.devices = "all"
    warnings = []
    if renamed:
        warnings.append(
            f"Setting the 'rename' field in sharing.{key}.resources is not yet supported"
            " in the config. Ignoring..."
        )
    if devices:
        warnings.append(
            f"Customizing the 'devices' field in sharing.{key}.resources is not yet"
            " supported in the config. Ignoring..."
        )
    return warnings
