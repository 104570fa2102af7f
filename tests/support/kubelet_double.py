"""A kubelet double: the device manager's side of the v1beta1 API over real gRPC.

It serves `Registration` on `<dir>/kubelet.sock`. Like the kubelet, on each Register it
checks the version, dials `<dir>/<endpoint>`, asks GetDevicePluginOptions and keeps a
ListAndWatch stream open, recording every list it receives; tests and the benchmark
then call GetPreferredAllocation and Allocate through the same connection. `restart()`
replaces the socket as a restarting kubelet does, and times the plugin's return.

Shared by tests/ and bench/ (imported as `kubelet_double`); it needs only grpc and the
generated modules.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from deviceplugin.v1beta1 import api_pb2, api_pb2_grpc

KUBELET_SOCKET = "kubelet.sock"
API_VERSION = "v1beta1"

Devices = dict[str, tuple[str, tuple[int, ...]]]  # ID -> (health, NUMA nodes)


def _devices(response: api_pb2.ListAndWatchResponse) -> Devices:
    return {d.ID: (d.health, tuple(n.ID for n in d.topology.nodes)) for d in response.devices}


@dataclass
class Registration:
    request: api_pb2.RegisterRequest
    at: float  # time.monotonic() when Register arrived


@dataclass
class Endpoint:
    """The double's connection to one registered plugin."""

    resource: str
    path: Path
    channel: grpc.Channel
    stub: api_pb2_grpc.DevicePluginStub
    options: api_pb2.DevicePluginOptions | None = None
    lists: list[tuple[float, Devices]] = field(default_factory=list)  # (monotonic, devices)
    ended: bool = False
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _stream: object = None

    def watch(self) -> None:
        """Open ListAndWatch and record each list from a background thread."""
        self._stream = self.stub.ListAndWatch(api_pb2.Empty())
        threading.Thread(target=self._read, name=f"law-{self.resource}", daemon=True).start()

    def _read(self) -> None:
        try:
            for response in self._stream:  # type: ignore[attr-defined]
                with self._changed:
                    self.lists.append((time.monotonic(), _devices(response)))
                    self._changed.notify_all()
        except grpc.RpcError:
            pass
        finally:
            with self._changed:
                self.ended = True
                self._changed.notify_all()

    def wait_list(
        self, predicate: Callable[[Devices], bool] = lambda _: True, timeout: float = 5.0
    ) -> tuple[float, Devices]:
        """The first recorded list that satisfies `predicate` (waiting for it)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for entry in self.lists:
                    if predicate(entry[1]):
                        return entry
                left = deadline - time.monotonic()
                if left <= 0 or self.ended:
                    raise TimeoutError(
                        f"{self.resource}: no matching ListAndWatch update; last: "
                        f"{self.lists[-1][1] if self.lists else None}"
                    )
                self._changed.wait(left)

    @property
    def devices(self) -> Devices:
        return self.wait_list()[1] if not self.lists else self.lists[-1][1]

    def allocate(self, *containers: Sequence[str]) -> api_pb2.AllocateResponse:
        request = api_pb2.AllocateRequest(
            container_requests=[api_pb2.ContainerAllocateRequest(devices_ids=c) for c in containers]
        )
        return self.stub.Allocate(request, timeout=5)

    def preferred(
        self, available: Iterable[str], required: Iterable[str] = (), size: int = 1
    ) -> list[str]:
        request = api_pb2.PreferredAllocationRequest(
            container_requests=[
                api_pb2.ContainerPreferredAllocationRequest(
                    available_deviceIDs=list(available),
                    must_include_deviceIDs=list(required),
                    allocation_size=size,
                )
            ]
        )
        response = self.stub.GetPreferredAllocation(request, timeout=5)
        return list(response.container_responses[0].deviceIDs)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.cancel()  # type: ignore[attr-defined]
        self.channel.close()


class _Registration(api_pb2_grpc.RegistrationServicer):
    def __init__(self, kubelet: KubeletDouble) -> None:
        self._kubelet = kubelet

    def Register(
        self, request: api_pb2.RegisterRequest, context: grpc.ServicerContext
    ) -> api_pb2.Empty:
        if request.version != API_VERSION:
            context.abort(grpc.StatusCode.UNKNOWN, f"Unsupported version: {request.version!r}")
        if self._kubelet.reject:
            context.abort(grpc.StatusCode.UNKNOWN, "registration refused by the test")
        self._kubelet._registered(request)
        return api_pb2.Empty()


class KubeletDouble:
    """Serve Registration in `directory`; connect to every plugin that registers."""

    def __init__(self, directory: Path, *, connect: bool = True) -> None:
        self.directory = Path(directory)
        self.socket_path = self.directory / KUBELET_SOCKET
        self.connect = connect  # dial and watch each plugin, as the kubelet does
        self.reject = False  # answer Register with an error
        self.registrations: list[Registration] = []
        self.endpoints: dict[str, Endpoint] = {}
        self._server: grpc.Server | None = None
        self._changed = threading.Condition()

    def start(self) -> KubeletDouble:
        self.directory.mkdir(parents=True, exist_ok=True)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        api_pb2_grpc.add_RegistrationServicer_to_server(_Registration(self), server)
        server.add_insecure_port(f"unix:{self.socket_path}")
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait(5)
            self._server = None
        for endpoint in self.endpoints.values():
            endpoint.close()
        try:
            self.socket_path.unlink()
        except FileNotFoundError:
            pass

    def restart(self) -> float:
        """Stop, remove every socket of the directory (a kubelet wipes it), start again.

        Returns the monotonic time at which the new kubelet.sock existed.
        """
        self.stop()
        for path in self.directory.glob("*.sock"):
            path.unlink(missing_ok=True)
        self.start()
        return time.monotonic()

    def __enter__(self) -> KubeletDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _registered(self, request: api_pb2.RegisterRequest) -> None:
        registration = Registration(request, time.monotonic())
        if self.connect:
            self._connect(request)
        with self._changed:
            self.registrations.append(registration)
            self._changed.notify_all()

    def _connect(self, request: api_pb2.RegisterRequest) -> None:
        path = self.directory / request.endpoint
        channel = grpc.insecure_channel(f"unix://{os.path.abspath(path)}")
        endpoint = Endpoint(
            request.resource_name, path, channel, api_pb2_grpc.DevicePluginStub(channel)
        )
        endpoint.options = endpoint.stub.GetDevicePluginOptions(api_pb2.Empty(), timeout=5)
        endpoint.watch()
        old = self.endpoints.get(request.resource_name)
        self.endpoints[request.resource_name] = endpoint
        if old is not None:
            old.close()

    def wait_registration(
        self, resource: str, after: float = 0.0, timeout: float = 5.0
    ) -> Registration:
        """The first Register for `resource` that arrived after `after` (monotonic)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for r in self.registrations:
                    if r.request.resource_name == resource and r.at >= after:
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [r.request.resource_name for r in self.registrations]
                    raise TimeoutError(f"no registration of {resource} (seen: {seen})")
                self._changed.wait(left)

    def endpoint(self, resource: str, timeout: float = 5.0) -> Endpoint:
        """The connection to `resource`'s plugin, once it registered."""
        self.wait_registration(resource, timeout=timeout)
        return self.endpoints[resource]
