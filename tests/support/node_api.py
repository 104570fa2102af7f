"""A Kubernetes API double for config-manager: Nodes, listed and watched.

kmock's emulator (tests/gfd/kubefake.py) streams a watch without resourceVersions, so
this is a small server of its own that does what config-manager's watch depends on,
as the apiserver does it:

- `GET /api/v1/nodes?fieldSelector=metadata.name=<node>`: a NodeList with the list's
  resourceVersion; `&watch=true&resourceVersion=N` streams (chunked, one JSON event a
  line) every change after N, then each change as it happens; `timeoutSeconds` ends
  the stream cleanly; `allowWatchBookmarks` lets `bookmark()` send BOOKMARK events.
- Every change bumps one cluster-wide resourceVersion. After `compact()` a watch from
  an older version is answered, as the apiserver answers it, with 200
  and a single ERROR event carrying a 410 Gone Status ("too old resource version"), or
  with `gone_as = "status"` as an HTTP 410 answer.
  `expire_watches()` sends that event on the open watches too.
- `drop_watches()` cuts every open watch mid-stream (no final chunk), as a lost
  connection or a restarting apiserver does.

It checks what it is sent: a bearer token, GET only, this one path, only the query
parameters above, a field selector naming one node, a numeric resourceVersion. A bad
request is answered with a Status (401, 404, 405 or 400) and recorded in `refusals`,
which the tests assert empty. Every request is recorded in `requests` (method, path,
query), and appended as a JSON line to the file $KUBEFAKE_REQUEST_LOG names, as
tests/gfd/kubefake.py does, for tests/deployments/test_chart_rbac.py.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

TOKEN = "node-api-fake-token"
REQUEST_LOG_ENV = "KUBEFAKE_REQUEST_LOG"
NODES = "/api/v1/nodes"
LIST_PARAMS = {"fieldSelector", "resourceVersion", "timeoutSeconds"}
WATCH_PARAMS = LIST_PARAMS | {"watch", "allowWatchBookmarks"}


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip


class NodeApiFake:
    """The server (see the module); use as a context manager."""

    def __init__(self) -> None:
        self.version = 1
        self.floor = 0  # watches from a version below this get 410 Gone
        # How a watch from below the floor is answered: "event" (200 and an ERROR event,
        # what the apiserver's watch cache does) or "status" (HTTP 410 and the Status).
        self.gone_as = "event"
        self.nodes: dict[str, dict[str, Any]] = {}
        self.history: list[tuple[int, str, dict[str, Any]]] = []  # (version, type, object)
        self.requests: list[dict[str, Any]] = []
        self.refusals: list[tuple[str, str]] = []  # (request line, why)
        self._changed = threading.Condition()
        self._drops = 0  # watches compare these generation counters with their own
        self._expiries = 0
        self._bookmarks = 0
        self._closing = False
        self._open = 0  # watch streams being served
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> NodeApiFake:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def write_kubeconfig(self, path: Path) -> str:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": TOKEN}}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
            "current-context": "fake",
        }
        path.write_text(json.dumps(config))
        return str(path)

    # --- for tests ------------------------------------------------------------------

    def put_node(self, name: str, labels: dict[str, str] | None = None) -> int:
        """Create or replace the Node's labels; the new resourceVersion."""
        with self._changed:
            old = self.nodes.get(name)
            node = copy.deepcopy(old) if old else {
                "apiVersion": "v1", "kind": "Node",
                "metadata": {"name": name, "uid": str(uuid.uuid4())},
            }  # fmt: skip
            node["metadata"]["labels"] = dict(labels or {})
            return self._record("MODIFIED" if old else "ADDED", node)

    def set_label(self, name: str, key: str, value: str | None) -> int:
        """Set (or with None remove) one label of an existing Node."""
        with self._changed:
            labels = dict(self.nodes[name]["metadata"].get("labels") or {})
            if value is None:
                labels.pop(key, None)
            else:
                labels[key] = value
            return self.put_node(name, labels)

    def delete_node(self, name: str) -> int:
        with self._changed:
            node = copy.deepcopy(self.nodes[name])
            return self._record("DELETED", node)

    def compact(self) -> None:
        """Watches that arrive from now on from an older version get 410 Gone (the
        history stays for the watches already open, as the apiserver's watch cache)."""
        with self._changed:
            self.floor = self.version

    def expire_watches(self) -> None:
        with self._changed:
            self._expiries += 1
            self._changed.notify_all()

    def drop_watches(self) -> None:
        with self._changed:
            self._drops += 1
            self._changed.notify_all()

    def bookmark(self) -> None:
        with self._changed:
            self._bookmarks += 1
            self._changed.notify_all()

    def open_watches(self) -> int:
        with self._changed:
            return self._open

    def wait_request(
        self, predicate: Callable[[dict[str, Any]], bool], after: int = 0, timeout: float = 10.0
    ) -> int:
        """The index of the first request from index `after` on that matches (waiting)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for index in range(after, len(self.requests)):
                    if predicate(self.requests[index]):
                        return index
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no such request from #{after}; seen: {self.requests}")
                self._changed.wait(left)

    # --- the server side --------------------------------------------------------------

    def _record(self, kind: str, node: dict[str, Any]) -> int:
        self.version += 1
        node["metadata"]["resourceVersion"] = str(self.version)
        name = node["metadata"]["name"]
        if kind == "DELETED":
            self.nodes.pop(name, None)
        else:
            self.nodes[name] = node
        self.history.append((self.version, kind, copy.deepcopy(node)))
        self._changed.notify_all()
        return self.version

    def _log(self, entry: dict[str, Any]) -> tuple[int, int, int, int]:
        """Record a request; the compaction floor and the drop, expiry and bookmark
        counters as of its arrival, so that what a test does after it saw the request
        (compact, drop) happens after the request, however late its thread runs."""
        with self._changed:
            self.requests.append(entry)
            self._changed.notify_all()
            counters = self.floor, self._drops, self._expiries, self._bookmarks
        log_file = os.environ.get(REQUEST_LOG_ENV)
        if log_file:
            with open(log_file, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")
        return counters


def _handler(fake: NodeApiFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # the base's name
            pass  # the tests read `requests`, not a log on stderr

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            counters = fake._log({"method": "GET", "path": url.path, "query": query})
            if fake._closing:  # a kept-alive connection after __exit__: no more answers
                self.close_connection = True
                self._json(503, _status(503, "ServiceUnavailable", "fake: shutting down"))
                return
            problem = self._check(url.path, query)
            if problem is not None:
                code, reason, message = problem
                fake.refusals.append((self.requestline, message))
                self._json(code, _status(code, reason, message))
                return
            name = query["fieldSelector"].removeprefix("metadata.name=")
            if query.get("watch") in ("true", "1"):
                self._watch(name, query, counters)
            else:
                self._list(name)

        def _refuse_other(self) -> None:
            fake._log({"method": self.command, "path": urlsplit(self.path).path, "query": {}})
            message = f"fake: only GET {NODES} is served (got {self.command})"
            fake.refusals.append((self.requestline, message))
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(length)
            self._json(405, _status(405, "MethodNotAllowed", message))

        do_POST = do_PUT = do_PATCH = do_DELETE = _refuse_other

        def _check(self, path: str, query: dict[str, str]) -> tuple[int, str, str] | None:
            if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                return 401, "Unauthorized", "Unauthorized"
            if path != NODES:
                return 404, "NotFound", f"fake: {path} is not served"
            watch = query.get("watch") in ("true", "1")
            unknown = set(query) - (WATCH_PARAMS if watch else LIST_PARAMS)
            if unknown:
                return 400, "BadRequest", f"fake: unexpected parameters {sorted(unknown)}"
            selector = query.get("fieldSelector", "")
            name = selector.removeprefix("metadata.name=")
            if not selector.startswith("metadata.name=") or not name or "," in name:
                return 400, "BadRequest", f"fake: expected metadata.name=<node>, got {selector!r}"
            version = query.get("resourceVersion", "")
            if watch and not version.isdigit():
                return 400, "BadRequest", f"fake: watch from resourceVersion {version!r}"
            if not query.get("timeoutSeconds", "1").isdigit():
                return 400, "BadRequest", "fake: timeoutSeconds must be a number"
            return None

        def _json(self, code: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _list(self, name: str) -> None:
            with fake._changed:
                items = [copy.deepcopy(fake.nodes[name])] if name in fake.nodes else []
                version = str(fake.version)
            self._json(200, {"kind": "NodeList", "apiVersion": "v1",
                             "metadata": {"resourceVersion": version}, "items": items})  # fmt: skip

        def _chunk(self, event: dict[str, Any]) -> None:
            data = json.dumps(event).encode() + b"\n"
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def _watch(self, name: str, query: dict[str, str], counters: tuple[int, ...]) -> None:
            since = int(query["resourceVersion"])
            bookmarks = query.get("allowWatchBookmarks") == "true"
            timeout = int(query.get("timeoutSeconds") or 1800)
            deadline = time.monotonic() + timeout
            floor, drops, expiries, marks = counters
            if since < floor and fake.gone_as == "status":
                message = f"too old resource version: {since} ({floor})"
                self._json(410, _status(410, "Expired", message))
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            with fake._changed:
                fake._open += 1
            try:
                if since < floor:
                    message = f"too old resource version: {since} ({floor})"
                    self._chunk({"type": "ERROR", "object": _status(410, "Expired", message)})
                    self.wfile.write(b"0\r\n\r\n")
                    return
                while True:
                    with fake._changed:
                        pending = [(v, k, o) for v, k, o in fake.history
                                   if v > since and o["metadata"]["name"] == name]  # fmt: skip
                        while (
                            not pending
                            and not fake._closing
                            and (drops, expiries, marks)
                            == (fake._drops, fake._expiries, fake._bookmarks)
                        ):
                            left = deadline - time.monotonic()
                            if left <= 0:
                                break
                            fake._changed.wait(left)
                            pending = [(v, k, o) for v, k, o in fake.history
                                       if v > since and o["metadata"]["name"] == name]  # fmt: skip
                        dropped, expired = fake._drops != drops, fake._expiries != expiries
                        marked = fake._bookmarks != marks
                        drops, expiries, marks = fake._drops, fake._expiries, fake._bookmarks
                        current = fake.version
                    if dropped:
                        self.connection.shutdown(socket.SHUT_RDWR)
                        self.close_connection = True
                        return
                    for version, kind, obj in pending:
                        self._chunk({"type": kind, "object": obj})
                        since = version
                    if expired:
                        message = f"too old resource version: {since} ({current})"
                        self._chunk({"type": "ERROR", "object": _status(410, "Expired", message)})
                        break
                    if marked and bookmarks:
                        meta = {"resourceVersion": str(current)}
                        self._chunk({"type": "BOOKMARK", "object": {
                            "kind": "Node", "apiVersion": "v1", "metadata": meta}})  # fmt: skip
                        since = max(since, current)
                    if fake._closing:
                        self.close_connection = True
                        break
                    if time.monotonic() >= deadline:
                        break
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            finally:
                with fake._changed:
                    fake._open -= 1

    return Handler
