"""The Kubernetes client config GFD and config-manager share: a kubeconfig, else in-cluster.

`client_configuration` imports the Kubernetes client when called (~0.5 s and ~40 MiB),
so only the code paths that talk to the API pay for it. A kubeconfig the deployment
names that does not load is one line naming the file and what is wrong with it (the
client's own loader answers a YAML traceback, a TypeError for a document that is not a
mapping, or `No configuration found` for a file that is not there).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubernetes.client import Configuration

__all__ = [
    "SERVICE_ACCOUNT_TOKEN",
    "ClientConfigError",
    "KubeconfigError",
    "client_configuration",
]

SERVICE_ACCOUNT_TOKEN = "/var/run/secrets/kubernetes.io/serviceaccount/token"
CLIENT_CONFIG_PREFIX = "unable to load Kubernetes client config"  # upstream's words


class ClientConfigError(Exception):
    """No usable client config; `fault` is the message after CLIENT_CONFIG_PREFIX."""

    def __init__(self, fault: str) -> None:
        super().__init__(f"{CLIENT_CONFIG_PREFIX}: {fault}")
        self.fault = fault


class KubeconfigError(ClientConfigError):
    """The kubeconfig file the deployment names does not load: a mistake to show."""


def client_configuration(
    kubeconfig: str, environ: Mapping[str, str], *, token_path: str = SERVICE_ACCOUNT_TOKEN
) -> Configuration:
    """The kubeconfig when one is given, else the in-cluster config (token, CA, `environ`)."""
    from kubernetes import client, config
    from kubernetes.config.incluster_config import InClusterConfigLoader

    configuration = client.Configuration()
    if kubeconfig:
        _load_kubeconfig(kubeconfig, configuration)
        return configuration
    try:
        # The loader with `environ` rather than load_incluster_config(), so a caller's
        # environment (a probe's, a test's) is the one read.
        InClusterConfigLoader(
            token_filename=token_path,
            cert_filename=os.path.join(os.path.dirname(token_path), "ca.crt"),
            environ=environ,
        ).load_and_set(configuration)
    except (config.ConfigException, OSError, ValueError) as err:
        raise ClientConfigError(str(err)) from err
    return configuration


def _load_kubeconfig(path: str, configuration: Configuration) -> None:
    """Load `path` into `configuration`, or raise KubeconfigError naming the file and fault."""
    import yaml
    from kubernetes import config

    def fault(what: str) -> KubeconfigError:
        return KubeconfigError(f"kubeconfig {path} {what}")

    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as err:
        raise fault(f"cannot be read: {err.strerror}") from err
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise fault(f"is not valid YAML{_yaml_position(err)}: {_yaml_problem(err)}") from err
    if document is None:
        raise fault("is empty")
    if not isinstance(document, dict):
        names: dict[type, str] = {str: "a string", list: "a list"}
        kind = names.get(type(document), type(document).__name__)
        raise fault(f"is not a kubeconfig: a YAML mapping was expected, got {kind}")
    try:
        # persist_config=False: never rewrite the user's kubeconfig on token refresh.
        config.load_kube_config(
            config_file=path, client_configuration=configuration, persist_config=False
        )
    except config.ConfigException as err:
        raise fault(f"is not usable: {str(err).splitlines()[0]}") from err
    except Exception as err:  # the loader's own bugs on odd input: a TypeError, bad base64
        raise fault(f"cannot be used: {type(err).__name__}: {err}") from err
    if not configuration.host:
        raise fault("has no server for its current context's cluster")


def _yaml_position(err: Exception) -> str:
    mark = getattr(err, "problem_mark", None)
    if mark is not None:
        return f" at line {mark.line + 1}, column {mark.column + 1}"
    position = getattr(err, "position", None)  # a reader error: a byte YAML refuses
    return f" at byte {position}" if position is not None else ""


def _yaml_problem(err: Exception) -> str:
    problem = getattr(err, "problem", None) or getattr(err, "reason", None)
    return str(problem or str(err).splitlines()[0])
