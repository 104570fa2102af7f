"""One resource's gRPC server: its socket, its kubelet registration, its RPCs.

The synchronous gRPC server (docs/architecture.md#dependencies-and-why-these): every open
ListAndWatch stream holds one executor thread, so the pool has room for the kubelet's
stream, a few callers and spare. Errors go back with status UNKNOWN and upstream's text
as the details, which is what the kubelet sees from a plain Go error.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent import futures
from pathlib import Path

import grpc

from deviceplugin.allocate import Allocator
from deviceplugin.devices import Resource
from deviceplugin.errors import PluginError, RequestError
from deviceplugin.metrics import NO_METRICS, PluginMetrics
from deviceplugin.preferred import PreferredAllocator
from deviceplugin.v1beta1 import api_pb2, api_pb2_grpc
from deviceplugin.watch import Identity, identity

log = logging.getLogger(__name__)

API_VERSION = "v1beta1"
HEALTHY = "Healthy"
UNHEALTHY = "Unhealthy"
MAX_WORKERS = 10  # streams + unary callers; threads start only when needed
DIAL_TIMEOUT = 5.0  # upstream's: own socket ready, kubelet dial, Register
OPTIONS = api_pb2.DevicePluginOptions(
    pre_start_required=False, get_preferred_allocation_available=True
)


def rpc_error_text(err: grpc.RpcError) -> str:
    """A failed call as Go's gRPC prints one: `rpc error: code = Unknown desc = ...`."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    name = "".join(part.title() for part in code.name.split("_"))
    details = err.details() if hasattr(err, "details") else str(err)
    return f"rpc error: code = {name} desc = {details}"


def unix_target(path: str | Path) -> str:
    return f"unix://{os.path.abspath(path)}"


class PluginServer(api_pb2_grpc.DevicePluginServicer):
    """Serves one resource on `<socket_dir>/nvidia-<name>.sock`."""

    def __init__(
        self,
        resource: Resource,
        allocator: Allocator,
        preferred: PreferredAllocator,
        socket_dir: Path,
        metrics: PluginMetrics = NO_METRICS,
    ) -> None:
        self.resource = resource
        self._metrics = metrics
        metrics.serving(resource.name)
        self.resource_name = resource.name
        self.socket_path = socket_dir / resource.socket_name
        self._allocator = allocator
        self._preferred = preferred
        self._server: grpc.Server | None = None
        self._socket: Identity = None  # the socket file serve() made
        self._kubelet: tuple[str, Identity] | None = None  # the kubelet.sock registered with
        self._changed = threading.Condition()
        self._stopped = False
        self._version = 0
        self._healthy = {d.id: True for d in resource.devices}
        self._messages = {
            (d.id, ok): api_pb2.Device(ID=d.id, health=HEALTHY if ok else UNHEALTHY)
            for d in resource.devices
            for ok in (True, False)
        }
        for d in resource.devices:
            if d.numa_node is not None:
                for ok in (True, False):
                    self._messages[d.id, ok].topology.nodes.add(ID=d.numa_node)
        self._snapshot = self._list()

    # -- lifecycle -------------------------------------------------------------------

    def serve(self) -> None:
        """Listen on the socket and wait until it answers; PluginError if it does not.

        Also after `stop`: a kubelet restart serves the same devices, with their health,
        on a new socket.
        """
        with self._changed:
            self._stopped = False
        try:
            self.socket_path.parent.mkdir(parents=True, exist_ok=True)
            _remove(self.socket_path)
        except OSError as err:  # a directory in the socket's place, a read-only directory
            raise PluginError(
                f"error creating GRPC server socket: {self.socket_path}: {err.strerror}"
            ) from err
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=MAX_WORKERS))
        # grpcio-tools generates the servicer helpers without annotations
        api_pb2_grpc.add_DevicePluginServicer_to_server(self, server)  # type: ignore[no-untyped-call]
        if not server.add_insecure_port(f"unix:{self.socket_path}"):
            raise PluginError(f"error creating GRPC server socket: {self.socket_path}")
        server.start()
        self._server = server
        log.info("Starting GRPC server for '%s'", self.resource_name)
        # One real call, waiting for the connection: channel_ready_future polls its
        # state and costs ~200 ms per dial, a fifth of the re-registration budget.
        with grpc.insecure_channel(unix_target(self.socket_path)) as channel:
            try:
                api_pb2_grpc.DevicePluginStub(channel).GetDevicePluginOptions(  # type: ignore[no-untyped-call]
                    api_pb2.Empty(), timeout=DIAL_TIMEOUT, wait_for_ready=True
                )
            except grpc.RpcError as err:
                raise PluginError(
                    f"unable to connect to GRPC server for '{self.resource_name}':"
                    f" {rpc_error_text(err)}"
                ) from err
        self._socket = identity(self.socket_path)

    def register(self, kubelet_socket: str) -> None:
        """Tell the kubelet about this resource; PluginError (the plugin stops) if it fails."""
        request = api_pb2.RegisterRequest(
            version=API_VERSION,
            endpoint=self.socket_path.name,  # a basename: the kubelet joins its own dir
            resource_name=self.resource_name,
            options=OPTIONS,
        )
        failed = f"unable to register device plugin for '{self.resource_name}'"
        wrong = not_a_socket(kubelet_socket)
        if wrong is not None:
            # No dial: it would wait its 5 s and say only "Deadline Exceeded".
            self._metrics.registration(self.resource_name, ok=False)
            raise PluginError(
                f"{failed}: kubelet socket {kubelet_socket} {wrong}: --kubelet-socket names"
                " the kubelet's registration socket (the plugins' sockets go in its directory)"
            )
        # Before the dial: a kubelet that restarts meanwhile then reads as another one.
        kubelet = (kubelet_socket, identity(kubelet_socket))
        with grpc.insecure_channel(unix_target(kubelet_socket)) as channel:
            try:
                api_pb2_grpc.RegistrationStub(channel).Register(  # type: ignore[no-untyped-call]
                    request, timeout=DIAL_TIMEOUT, wait_for_ready=True
                )
            except grpc.RpcError as err:
                self._metrics.registration(self.resource_name, ok=False)
                text = rpc_error_text(err)
                if not os.path.lexists(kubelet_socket):
                    text = f"{text} (no kubelet socket at {kubelet_socket} yet)"
                raise PluginError(f"{failed}: {text}") from err
        self._kubelet = kubelet
        self._metrics.registration(self.resource_name, ok=True)
        log.info("Registered device plugin for '%s' with Kubelet", self.resource_name)

    def in_place(self) -> bool:
        """Still served on the socket it made and, once registered, known to the kubelet.

        The kubelet cannot be asked what it has registered, but a restarted kubelet
        wipes the plugin sockets and makes its own socket anew (another inode), and
        forgets every registration: either is seen here.
        """
        if self._server is None or self._stopped or self._socket is None:
            return False
        if identity(self.socket_path) != self._socket:
            return False
        if self._kubelet is not None:
            path, registered_with = self._kubelet
            return identity(path) == registered_with
        return True

    def stop(self) -> None:
        """Stop serving, end the streams and remove the socket."""
        with self._changed:
            self._stopped = True
            self._changed.notify_all()
        if self._server is not None:
            self._server.stop(grace=None).wait(timeout=DIAL_TIMEOUT)
            self._server = None
            log.info("Stopping to serve '%s' on %s", self.resource_name, self.socket_path)
        _remove(self.socket_path)

    # -- health ----------------------------------------------------------------------

    def set_health(self, device_ids: Sequence[str], healthy: bool) -> None:
        """From the health monitor: flip devices, wake every ListAndWatch stream."""
        changed = [i for i in device_ids if self._healthy.get(i, healthy) != healthy]
        if not changed:
            return
        word = "healthy" if healthy else "unhealthy"
        for device_id in changed:
            log.info("'%s' device marked %s: %s", self.resource_name, word, device_id)
        with self._changed:
            for device_id in changed:
                self._healthy[device_id] = healthy
            self._snapshot = self._list()
            self._version += 1
            self._changed.notify_all()

    def health(self) -> dict[str, bool]:
        with self._changed:
            return dict(self._healthy)

    def _list(self) -> api_pb2.ListAndWatchResponse:
        return api_pb2.ListAndWatchResponse(
            devices=[self._messages[d.id, self._healthy[d.id]] for d in self.resource.devices]
        )

    # -- RPCs ------------------------------------------------------------------------

    def GetDevicePluginOptions(
        self, request: api_pb2.Empty, context: grpc.ServicerContext
    ) -> api_pb2.DevicePluginOptions:
        return OPTIONS

    def ListAndWatch(
        self, request: api_pb2.Empty, context: grpc.ServicerContext
    ) -> Iterator[api_pb2.ListAndWatchResponse]:
        """The full list at once, then again after every health change, until stopped."""

        def wake() -> None:
            with self._changed:
                self._changed.notify_all()

        context.add_callback(wake)  # a cancelled stream must not hold its thread
        seen = -1
        while True:
            with self._changed:
                while seen == self._version and not self._stopped and context.is_active():
                    self._changed.wait()
                if self._stopped or not context.is_active():
                    return
                seen, snapshot = self._version, self._snapshot
            yield snapshot

    def GetPreferredAllocation(
        self, request: api_pb2.PreferredAllocationRequest, context: grpc.ServicerContext
    ) -> api_pb2.PreferredAllocationResponse:
        response = api_pb2.PreferredAllocationResponse()
        for container in request.container_requests:
            try:
                ids = self._preferred.preferred(
                    container.available_deviceIDs,
                    container.must_include_deviceIDs,
                    container.allocation_size,
                )
            except RequestError as err:
                self._metrics.preferred_allocation(self.resource_name, ok=False)
                context.abort(
                    grpc.StatusCode.UNKNOWN,
                    f"error getting list of preferred allocation devices: {err}",
                )
                raise  # abort() raised already; this only tells type checkers
            response.container_responses.add(deviceIDs=ids)
        self._metrics.preferred_allocation(self.resource_name, ok=True)
        return response

    def Allocate(
        self, request: api_pb2.AllocateRequest, context: grpc.ServicerContext
    ) -> api_pb2.AllocateResponse:
        start = time.perf_counter()
        try:
            response = self._allocator.allocate(request)
        except RequestError as err:
            self._metrics.allocate(self.resource_name, False, time.perf_counter() - start)
            context.abort(grpc.StatusCode.UNKNOWN, str(err))
            raise  # abort() raised already; this only tells type checkers
        self._metrics.allocate(self.resource_name, True, time.perf_counter() - start)
        return response

    def PreStartContainer(
        self, request: api_pb2.PreStartContainerRequest, context: grpc.ServicerContext
    ) -> api_pb2.PreStartContainerResponse:
        return api_pb2.PreStartContainerResponse()


def not_a_socket(path: str | Path) -> str | None:
    """What is wrong with `path` as the kubelet's socket: `is a directory, not a socket`;
    None for a socket, or for nothing there yet (a kubelet may still come and make it)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"cannot be reached: {err.strerror}"
    if stat.S_ISSOCK(mode):
        return None
    kind = (
        "a directory"
        if stat.S_ISDIR(mode)
        else "a regular file"
        if stat.S_ISREG(mode)
        else "a special file"
    )
    return f"is {kind}, not a socket"


def _remove(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
