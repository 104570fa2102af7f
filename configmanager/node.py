"""The node label config-manager follows, kept current by a list-then-watch loop.

`LabelTracker` is upstream's informer callbacks for one label, kept as they are:
the first sight of the Node sets the value (the label's, or "" without it); a later
sight sets it only when the label changed; the Node going away sets "" when the label
was non-empty. `wait_change` is the main loop's blocking read: it returns once the
value differs from the last one read (the first read returns right after the first
set, whatever the value).

`NodeWatcher.run` is the reflector: list the Node, then watch from the list's
resourceVersion, resuming each new watch from the last resourceVersion seen (a watch
the server ended, a bookmark, a dropped connection). A watch answered with 410 Gone
(the version was compacted away) re-lists at once; any other error Status re-lists
after a backoff; a connection that cannot be made is retried, with the backoff, from
the same version. Nothing here ever gives up: the API server coming back is the cure.
`on_alive` is called after every list and every watch event or end, for the liveness
heartbeat.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from configmanager.kube import ApiStatusError

__all__ = ["Backoff", "LabelTracker", "NodeSource", "NodeWatcher", "label_value"]

log = logging.getLogger(__name__)

GONE = 410
# client-go's reflector: a watch lasts 5 to 10 minutes before the server ends it; one
# fixed figure here, so that the liveness limit (3 of them plus slack) is known.
WATCH_TIMEOUT_S = 300
# client-go's reflector backs off after a watch that ended this fast with no event.
VERY_SHORT_WATCH_S = 1.0


def label_value(node: Mapping[str, Any], label: str) -> str:
    labels = (node.get("metadata") or {}).get("labels") or {}
    return str(labels.get(label, ""))


class LabelTracker:
    """The label's value as the informer sees it, and a blocking wait for a change."""

    def __init__(self, label: str) -> None:
        self.label = label
        self._value: str | None = None  # None: never set (the Node not seen yet)
        self._changed = threading.Condition()

    @property
    def value(self) -> str | None:
        with self._changed:
            return self._value

    def node_seen(self, node: Mapping[str, Any]) -> None:
        """An add or update: set the label's value if first seen or changed."""
        self._set(label_value(node, self.label), only_if_set=False)

    def node_gone(self) -> None:
        """A delete: back to "" when the label was non-empty."""
        self._set("", only_if_set=True)

    def _set(self, value: str, *, only_if_set: bool) -> None:
        with self._changed:
            if only_if_set and not self._value:
                return
            if self._value is not None and self._value == value:
                return
            self._value = value
            self._changed.notify_all()

    def wait_change(self, last: str | None, timeout: float) -> str | None:
        """The value once it is set and differs from `last` (None: nothing read yet);
        None when `timeout` seconds pass first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._value is None or self._value == last:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)
            return self._value


class NodeSource(Protocol):
    """What the watcher needs of the API (kube.NodeApi)."""

    def list_node(self, name: str) -> tuple[dict[str, Any] | None, str]: ...

    def watch_node(self, name: str, version: str, timeout_s: int) -> Any: ...


class Backoff:
    """client-go's reflector backoff: 0.8 s doubling to 30 s, reset by a success."""

    def __init__(self, initial: float = 0.8, cap: float = 30.0) -> None:
        self.initial, self.cap = initial, cap
        self.delay = initial

    def next(self) -> float:
        delay, self.delay = self.delay, min(self.delay * 2, self.cap)
        return delay

    def reset(self) -> None:
        self.delay = self.initial


class NodeWatcher:
    """Keeps a LabelTracker current from one Node's list and watch (see the module)."""

    def __init__(
        self,
        api: NodeSource,
        node_name: str,
        tracker: LabelTracker,
        *,
        watch_timeout_s: int = WATCH_TIMEOUT_S,
        backoff: Backoff | None = None,
        on_alive: Callable[[], object] = lambda: None,
    ) -> None:
        self.api, self.node_name, self.tracker = api, node_name, tracker
        self.watch_timeout_s = watch_timeout_s
        self.backoff = backoff or Backoff()
        self.on_alive = on_alive
        self.stop = threading.Event()
        self.lists = 0  # counted for tests and logs
        self._warned_absent = False

    def run(self) -> None:
        version: str | None = None
        while not self.stop.is_set():
            if version is None:
                version = self._list()
                if version is None:
                    continue
            version = self._watch(version)

    def _list(self) -> str | None:
        """List the Node; its version, or None after a failure (backed off)."""
        try:
            node, version = self.api.list_node(self.node_name)
        except ApiStatusError as err:
            self._pause(f"Failed to list node {self.node_name}: {err}")
            return None
        except (OSError, ValueError, _http_errors()) as err:
            self._pause(f"Failed to list node {self.node_name}: {_describe(err)}")
            return None
        self.lists += 1
        if node is None:
            if not self._warned_absent:
                log.warning("Node %s not found; waiting for it to appear", self.node_name)
                self._warned_absent = True
            self.tracker.node_gone()
        else:
            self.tracker.node_seen(node)
        self.on_alive()
        return version

    def _watch(self, version: str) -> str | None:
        """Watch from `version`: the version to resume from, or None to re-list."""
        started, events = time.monotonic(), 0
        try:
            for event in self.api.watch_node(self.node_name, version, self.watch_timeout_s):
                events += 1
                self.backoff.reset()
                kind, obj = event.get("type"), event.get("object") or {}
                if kind == "ERROR":
                    code = int(obj.get("code") or 0)
                    if code == GONE:
                        log.info("Watch of node %s expired (%s); re-listing",
                                 self.node_name, obj.get("message") or "410 Gone")  # fmt: skip
                        return None
                    raise ApiStatusError(code, str(obj.get("message") or ""))
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                if kind in ("ADDED", "MODIFIED"):
                    self.tracker.node_seen(obj)
                elif kind == "DELETED":
                    self.tracker.node_gone()
                self.on_alive()
                if self.stop.is_set():
                    return version
        except ApiStatusError as err:
            if err.code == GONE:
                log.info("Watch of node %s expired (%s); re-listing", self.node_name, err)
                return None
            self._pause(f"Watch of node {self.node_name} failed: {err}; re-listing")
            return None
        except (OSError, ValueError, _http_errors()) as err:
            self._pause(
                f"Watch of node {self.node_name} broke off: {_describe(err)};"
                f" resuming from resourceVersion {version}"
            )
            return version
        if self.stop.is_set():
            return version
        if events == 0 and time.monotonic() - started < VERY_SHORT_WATCH_S:
            # A server that ends every watch at once would otherwise be asked in a loop.
            self._pause(f"Watch of node {self.node_name} ended at once, with no event")
            return version
        # The server ended the watch (timeoutSeconds): resume where it stopped.
        self.on_alive()
        return version

    def _pause(self, message: str) -> None:
        if self.stop.is_set():
            return
        delay = self.backoff.next()
        log.warning("%s (retrying in %.1fs)", message, delay)
        self.stop.wait(delay)


def _http_errors() -> type[BaseException]:
    from urllib3.exceptions import HTTPError

    return HTTPError


def _describe(err: BaseException) -> str:
    return str(err) or type(err).__name__
