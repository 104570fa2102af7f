"""A Kubernetes API double for the NodeFeature writer, built on kmock 0.8.

`KubeFake` closes the gaps in kmock 0.8 that this writer meets
(docs/architecture.md#dependencies-and-why-these): create answers 201, not 200;
PUT replaces an object, with resourceVersion checks (uid, resourceVersion and
creationTimestamp are stamped, which kmock does not do); discovery declares
`nfd.k8s-sigs.io/v1alpha1` `nodefeatures` (kmock's discovery is empty). Every
NodeFeature create or update body goes through `nodefeature_schema.review`, as
NFD's CRD makes a real apiserver take it (also one answered with an injected
fault): refused with its Status (400, 422 Invalid, 500), or stored pruned,
unknown fields named in a Warning header and in `pruned`. A PATCH of a
NodeFeature is refused: the double does not validate merged patches, so a writer
that starts patching must teach it first. Every request must carry the bearer
token.

Every request is recorded (`api_log`: method, path, query, and the owner
references a body carries), and appended as a JSON line to the file named by
$KUBEFAKE_REQUEST_LOG when that is set: tests/deployments/test_chart_rbac.py
runs the NodeFeature tests with it to derive the RBAC GFD needs.

Faults for the outage tests: `faults` answers a (method, path) with an error for as
long as it is set, `queued` answers the next requests to one with the errors listed,
once each, `outage` answers every request with one error, and `retry_after` adds that
header to each error injected. Each of them also takes a `RawAnswer`: a status, a
content type and a body sent as they are, for what stands in front of a real API server
and answers in its place (a proxy's HTML login page with 200, a load balancer's plain
text 502, JSON cut short). `FakeApiServer(link=True)` puts a `NetworkLink` in front
of the server, for the failures no HTTP answer can make: connection refused and a
server that accepts and never answers (the client's timeout).

`FakeApiServer` runs it in a daemon thread with its own event loop, because
the sync client deadlocks on the loop that serves it.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import itertools
import json
import os
import select
import socket
import threading
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp.web
import attrs
import kmock

from tests.gfd.nodefeature_schema import Review, review

NODEFEATURES = kmock.resource("nfd.k8s-sigs.io", "v1alpha1", "nodefeatures")
PODS = kmock.resource("", "v1", "pods")
TOKEN = "fake-token"
REQUEST_LOG_ENV = "KUBEFAKE_REQUEST_LOG"


def _status(code: int, reason: str, message: str, **details: Any) -> kmock.KubernetesError:
    # Non-empty details, or kmock puts a traceback there.
    return kmock.KubernetesError(
        status=code, reason=reason, message=message, details=details or {"kind": "nodefeatures"}
    )


@attrs.frozen
class RawAnswer:
    """An answer sent byte for byte, not a Kubernetes Status: what a proxy would send."""

    status: int
    body: str | bytes
    content_type: str = "text/html; charset=utf-8"


Fault = kmock.KubernetesError | RawAnswer


@attrs.define(kw_only=True)
class KubeFake(kmock.KubernetesEmulator):
    """The emulator, made strict where the NodeFeature writer needs it."""

    serve_nodefeatures: bool = True
    # (HTTP method, URL path) -> the error to answer with, set by tests.
    faults: dict[tuple[str, str], Fault] = attrs.field(factory=dict)
    # (HTTP method, URL path) -> errors for the next requests to it, one each, in order.
    queued: dict[tuple[str, str], list[Fault]] = attrs.field(factory=dict)
    # While set, the answer to every request.
    outage: Fault | None = None
    # While set, sent as the Retry-After header of every error injected above.
    retry_after: str | None = None
    # (method, path, errors) for every NodeFeature body refused.
    rejections: list[tuple[str, str, list[str]]] = attrs.field(factory=list)
    # (method, path, field paths) for every NodeFeature body stored without some fields.
    pruned: list[tuple[str, str, list[str]]] = attrs.field(factory=list)
    # Every request received, as `_log_entry` records it.
    api_log: list[dict[str, Any]] = attrs.field(factory=list)
    _versions: itertools.count[int] = attrs.field(factory=lambda: itertools.count(1))

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        # Declared by hand: kmock's load_bundled() warns (importlib.resources.read_binary).
        self.resources[PODS] = kmock.ResourceInfo(
            kind="Pod", singular="pod", namespaced=True, verbs={"get", "list", "watch"}
        )
        if self.serve_nodefeatures:
            self.resources[NODEFEATURES] = kmock.ResourceInfo(
                kind="NodeFeature",
                singular="nodefeature",
                namespaced=True,
                verbs={"create", "delete", "get", "list", "patch", "update", "watch"},
            )

    # --- for tests (call while no request is in flight) -------------------

    def calls(self, method: str, path_prefix: str = "/") -> list[tuple[str, str]]:
        """(method, path) of the recorded requests with this method under `path_prefix`."""
        return [
            (r.method.value, r.url.path)
            for r in self._requests
            if r.method.value == method and r.url.path.startswith(path_prefix)
        ]

    def nodefeature(self, namespace: str, name: str) -> dict[str, Any] | None:
        obj = self._objects._objects.get((NODEFEATURES, namespace, name))
        return None if obj is None or obj.deleted else copy.deepcopy(obj.raw)

    def put_pod(self, namespace: str, name: str, owners: list[dict[str, Any]]) -> str:
        uid = str(uuid.uuid4())
        meta = {"name": name, "namespace": namespace, "uid": uid, "ownerReferences": owners}
        self.objects[PODS, namespace, name] = {"apiVersion": "v1", "kind": "Pod", "metadata": meta}
        return uid

    # --- the server side ---------------------------------------------------

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        self._record(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        if headers.get("authorization") != f"Bearer {TOKEN}":
            return await self._render_error(_status(401, "Unauthorized", "Unauthorized"))
        key = (request.method.value, request.url.path)
        fault = self.outage
        if fault is None and self.queued.get(key):
            fault = self.queued[key].pop(0)
        if fault is None:
            fault = self.faults.get(key)
        if fault is not None:
            self._check_body_anyway(request)
            if isinstance(fault, RawAnswer):
                response = aiohttp.web.Response(
                    status=fault.status,
                    body=fault.body if isinstance(fault.body, bytes) else fault.body.encode(),
                    headers={"Content-Type": fault.content_type},
                )
            else:
                response = await self._render_error(fault)
            if self.retry_after is not None:
                response.headers["Retry-After"] = self.retry_after
            return response
        if request.resource == NODEFEATURES and self.serve_nodefeatures:
            if request.method == kmock.method.PUT and request.name:
                return await self._replace(request)
            if request.method == kmock.method.PATCH:
                message = "kubefake: NodeFeature patches are not validated; teach the double first"
                self.rejections.append((request.method.value, request.url.path, [message]))
                return await self._render_error(_status(500, "InternalError", message))
            if request.action == kmock.action.CREATE:
                answer = self._review(request, None, update=False)
                if answer.code is not None:
                    return await self._refusal(request, answer)
                request.data.clear()  # stored as the apiserver would: pruned
                request.data.update(answer.obj)
                self._stamp(request.data, uid=str(uuid.uuid4()))
                response = await super()._handle(request)
                for warning in answer.warnings:
                    response.headers.add("Warning", f"299 - {json.dumps(warning)}")
                return response
        return await super()._handle(request)

    async def _serve_create(self, request: kmock.Request) -> kmock.Payload:
        # A real apiserver answers 201, the only create status both client majors map.
        return kmock.Response(status=201, payload=await super()._serve_create(request))

    def _record(self, request: kmock.Request) -> None:
        entry = _log_entry(request)
        self.api_log.append(entry)
        log_file = os.environ.get(REQUEST_LOG_ENV)
        if log_file:
            with open(log_file, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    async def _replace(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        assert request.namespace is not None and request.name is not None
        key = (NODEFEATURES, request.namespace, request.name)
        async with self._lock:
            stored = self._objects._objects.get(key)
            if stored is None or stored.deleted:
                message = f'nodefeatures.nfd.k8s-sigs.io "{request.name}" not found'
                return await self._render_error(_status(404, "NotFound", message))
            answer = self._review(request, request.name, update=True)
            if answer.code is not None:
                return await self._refusal(request, answer)
            old_meta = stored.raw["metadata"]
            if answer.obj["metadata"]["resourceVersion"] != old_meta["resourceVersion"]:
                message = (
                    "Operation cannot be fulfilled on nodefeatures.nfd.k8s-sigs.io"
                    f' "{request.name}": the object has been modified;'
                    " please apply your changes to the latest version and try again"
                )
                return await self._render_error(_status(409, "Conflict", message))
            body = copy.deepcopy(answer.obj)
            self._stamp(body, uid=old_meta["uid"], created=old_meta["creationTimestamp"])
            stored.create(body)  # a new version replaces the whole object
        headers = [("Warning", f"299 - {json.dumps(w)}") for w in answer.warnings]
        return aiohttp.web.json_response(body, status=200, headers=headers)

    def _review(self, request: kmock.Request, name: str | None, *, update: bool) -> Review:
        assert request.namespace is not None
        strict = request.url.query.get("fieldValidation") == "Strict"
        answer = review(request.data, request.namespace, name, update=update, strict=strict)
        if answer.unknown:
            self.pruned.append((request.method.value, request.url.path, answer.unknown))
        return answer

    def _check_body_anyway(self, request: kmock.Request) -> None:
        """A body answered with an injected fault is still checked: a bad one is recorded
        in `rejections` (the answer stays the fault, as authorization comes first)."""
        if request.resource != NODEFEATURES or request.method not in (
            kmock.method.POST,
            kmock.method.PUT,
        ):
            return
        answer = self._review(request, request.name, update=request.method == kmock.method.PUT)
        if answer.code is not None:
            self._reject(request, answer)

    def _reject(self, request: kmock.Request, answer: Review) -> None:
        errors = [str(e) for e in answer.errors] or [answer.message]
        self.rejections.append((request.method.value, request.url.path, errors))

    async def _refusal(self, request: kmock.Request, answer: Review) -> aiohttp.web.StreamResponse:
        self._reject(request, answer)
        details: dict[str, Any] = {"group": NODEFEATURES.group, "kind": "nodefeatures"}
        if answer.code == 422:
            shown = (answer.obj.get("metadata") or {}).get("name") or request.name or ""
            details = {"name": shown, "group": NODEFEATURES.group, "kind": "NodeFeature"}
            details["causes"] = [e.cause() for e in answer.errors]
        error = _status(answer.code or 500, answer.reason, answer.message, **details)
        return await self._render_error(error)

    def _stamp(self, body: dict[str, Any], *, uid: str, created: str | None = None) -> None:
        meta = body.setdefault("metadata", {})
        meta["uid"] = uid
        meta["resourceVersion"] = str(next(self._versions))
        meta["creationTimestamp"] = created or datetime.datetime.now(datetime.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )


def _log_entry(request: kmock.Request) -> dict[str, Any]:
    """What the RBAC derivation needs of a request: method, path, query, owners sent."""
    entry: dict[str, Any] = {
        "method": request.method.value,
        "path": request.url.path,
        "query": dict(request.url.query),
    }
    body = request.data
    if isinstance(body, dict) and isinstance(body.get("metadata"), dict):
        owners = body["metadata"].get("ownerReferences")
        if owners:
            entry["ownerReferences"] = owners
    return entry


class FakeApiServer:
    """`KubeFake` on 127.0.0.1 in a daemon thread, for the sync Kubernetes client.

    `link=True`: clients reach it through `self.link` (a NetworkLink), which `url`
    and the kubeconfig point at.
    """

    def __init__(self, *, link: bool = False, **options: Any) -> None:
        self._options = options
        self._with_link = link
        self.link: NetworkLink | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, name="fake-apiserver", daemon=True)
        self.fake: KubeFake
        self.url = ""

    def __enter__(self) -> FakeApiServer:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("fake API server did not start within 10 s")
        if self._failure is not None:
            raise RuntimeError("fake API server failed to start") from self._failure
        if self._with_link:
            host, _, port = self.url.rpartition("//")[2].partition(":")
            self.link = NetworkLink((host, int(port)))
            self.url = f"http://127.0.0.1:{self.link.port}"
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.link is not None:
            self.link.close()
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def edit_nodefeature(self, namespace: str, name: str, labels: dict[str, str]) -> None:
        """Another writer sets the object's labels: a new version, as a PUT would store."""

        async def edit() -> None:
            fake = self.fake
            async with fake._lock:
                stored = fake._objects._objects[(NODEFEATURES, namespace, name)]
                body = copy.deepcopy(stored.raw)
                body["spec"]["labels"] = dict(labels)
                meta = body["metadata"]
                fake._stamp(body, uid=meta["uid"], created=meta["creationTimestamp"])
                stored.create(body)

        asyncio.run_coroutine_threadsafe(edit(), self._loop).result(10)

    def write_kubeconfig(self, path: Path, namespace: str = "default") -> str:
        """A kubeconfig (JSON is YAML) with a bearer token, pointing at this server."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
            "users": [{"name": "fake", "user": {"token": TOKEN}}],
            "contexts": [
                {
                    "name": "fake",
                    "context": {"cluster": "fake", "user": "fake", "namespace": namespace},
                }
            ],
            "current-context": "fake",
        }
        path.write_text(json.dumps(config))
        return str(path)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as err:  # reported to __enter__, not lost in the thread
            self._failure = err
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with KubeFake(**self._options) as fake, kmock.Server(fake) as server:
            self.fake = fake
            self.url = str(server.url).rstrip("/")  # the client appends paths with a slash
            self._ready.set()
            await self._stop.wait()


class NetworkLink:
    """A TCP proxy to `upstream` that tests switch between three states of the network.

    `up`: bytes flow both ways. `refuse`: nothing listens on the port, so a connection
    is refused. `blackhole`: connections are accepted and never answered, so the client
    times out. Leaving `up` cuts the open connections, as a server restart does.
    Only the proxy's own thread opens and closes the listener, between two selects:
    a listener closed under a select would keep accepting until the select returns.
    """

    STATES = ("up", "refuse", "blackhole")

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.state = "up"
        self._wanted = "up"
        self._changed = threading.Condition()
        self._open: list[socket.socket] = []
        self._listener: socket.socket | None = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, name="network-link", daemon=True)
        self._thread.start()

    def set(self, state: str) -> None:
        """Switch to `state`; returns once the proxy's thread has made it so."""
        assert state in (*self.STATES, "closed"), state
        with self._changed:
            self._wanted = state
            if not self._changed.wait_for(lambda: self.state == state, timeout=5):
                raise RuntimeError(f"network link did not switch to {state} within 5 s")

    def close(self) -> None:
        self.set("closed")
        self._thread.join(5)

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        return listener

    def _apply(self) -> None:
        with self._changed:
            wanted = self._wanted
            if wanted == self.state:
                return
            cut, self._open = self._open, []
            listening = wanted in ("up", "blackhole")
            if not listening and self._listener is not None:
                self._listener.close()
                self._listener = None
            elif listening and self._listener is None:
                self._listener = self._listen(self.port)
            self.state = wanted
            self._changed.notify_all()
        for sock in cut:
            _close(sock)

    def _serve(self) -> None:
        while self.state != "closed":
            self._apply()
            listener = self._listener
            if listener is None:
                select.select([], [], [], 0.005)  # refusing: nothing to accept
                continue
            ready, _, _ = select.select([listener], [], [], 0.005)
            if not ready:
                continue
            client, _ = listener.accept()
            # No Nagle: the client sends headers and body apart, and waiting for
            # the ACK of one before the other costs each request 40 ms.
            client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._changed:
                state = self.state
                self._open.append(client)
            if state == "up":
                self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _close(client)
            return
        server.settimeout(None)
        server.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._changed:
            self._open.append(server)
        for source, sink in ((client, server), (server, client)):
            threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := source.recv(65536):
            sink.sendall(data)
    _close(source)
    _close(sink)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
