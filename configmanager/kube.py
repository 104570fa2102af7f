"""The Node API calls config-manager makes: list its Node, and watch it.

Plain HTTP through the Kubernetes client's own configuration and connection pool, so
that the watch's resume, expiry and reconnect rules are ours to control (node.py) and
read the same on every client major: the client's loaders give the server, the TLS
files and the token (refreshed, in a cluster, as the projected token rotates), and
its urllib3 pool speaks to the server. The client config comes, as GFD's NodeFeature
output gets it, from `--kubeconfig` when one is given, else from the pod's service
account (nvlib/kubeclient.py).

Both calls name the Node by a field selector on the collection, which is what an
informer for one object sends: RBAC `list` and `watch` on `nodes`, nothing more.
Imported only by the command: the Kubernetes client costs ~0.7 s and ~45 MiB.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import urlencode

from nvlib import __version__

if TYPE_CHECKING:
    from kubernetes.client import Configuration

__all__ = ["ApiStatusError", "NodeApi"]

NODES = "/api/v1/nodes"
LIST_TIMEOUT_S = 30.0
CONNECT_TIMEOUT_S = 10.0
# A watch the server ends after timeoutSeconds is read for this much longer before the
# client calls the connection dead (a half-open TCP connection never ends by itself).
WATCH_READ_SLACK_S = 30.0


class ApiStatusError(Exception):
    """The API server answered with an error Status (or an error watch event)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{message} ({code})" if message else f"HTTP {code}")
        self.code = code


class NodeApi:
    """GET the Node collection, one Node selected, as a list or as a watch stream."""

    def __init__(self, configuration: Configuration) -> None:
        from kubernetes.client import rest

        self._configuration = configuration
        self._pool = rest.RESTClientObject(configuration).pool_manager
        self._host = configuration.host.rstrip("/")

    def list_node(self, name: str) -> tuple[dict[str, Any] | None, str]:
        """The Node (None if there is none) and the list's resourceVersion."""
        import urllib3

        query = {"fieldSelector": f"metadata.name={name}"}
        response = self._get(query, urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=LIST_TIMEOUT_S))
        try:
            body = json.loads(response.data or b"{}")
        finally:
            response.release_conn()
        items = [i for i in body.get("items") or [] if _name(i) == name]
        version = str((body.get("metadata") or {}).get("resourceVersion") or "")
        return (items[0] if items else None), version

    def watch_node(self, name: str, version: str, timeout_s: int) -> Iterator[dict[str, Any]]:
        """The watch events after `version`, until the server ends the stream.

        A connection that breaks raises urllib3's HTTPError (or OSError); a line that is
        not a JSON event counts as a broken stream too (ValueError).
        """
        import urllib3

        query = {
            "fieldSelector": f"metadata.name={name}",
            "watch": "true",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(timeout_s),
        }
        timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT_S, read=timeout_s + WATCH_READ_SLACK_S)
        response = self._get(query, timeout, stream=True)
        ended = False
        try:
            for line in response:
                if line.strip():
                    event = json.loads(line)
                    if not isinstance(event, dict) or "type" not in event:
                        raise ValueError(f"not a watch event: {line[:200]!r}")
                    yield event
            ended = True
        finally:
            if not ended:
                # Left mid-stream (410, stop, a broken line): the rest of the stream is
                # still on the connection, which must not serve the next request.
                response.close()
            response.release_conn()

    def _get(self, query: dict[str, str], timeout: Any, *, stream: bool = False) -> Any:
        headers = {"Accept": "application/json", "User-Agent": f"config-manager/{__version__}"}
        # every value is an APIKeyAuthSetting, but a TypedDict's .values() are typed object
        settings = cast("dict[str, Mapping[str, Any]]", self._configuration.auth_settings())
        for auth in settings.values():
            if auth.get("in") == "header" and auth.get("value"):
                headers[auth["key"]] = auth["value"]
        response = self._pool.request(
            "GET",
            f"{self._host}{NODES}?{urlencode(query)}",
            headers=headers,
            timeout=timeout,
            retries=False,
            preload_content=not stream,
        )
        if response.status != 200:
            data = response.data  # the error body, whole: a Status
            response.release_conn()
            raise ApiStatusError(response.status, _status_message(data))
        return response


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def _status_message(data: bytes | None) -> str:
    try:
        return str(json.loads(data or b"").get("message") or "")
    except (ValueError, AttributeError):
        return ""
