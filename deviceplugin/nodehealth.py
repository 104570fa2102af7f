"""Which GPUs had a critical event, kept for the life of the process.

A GPU's health is a fact of the node, not of the gRPC servers or the health monitor of
one start: the daemon keeps one `NodeHealth` across every restart (a kubelet restart, a
SIGHUP, a node check that found other GPUs or driver), and each start's monitor reads
it before the kubelet sees a list, and writes to it. It is keyed by GPU UUID: a GPU
swapped for another has a new UUID and starts healthy; the same GPU (one that fell off
the bus and came back included) stays marked until the recovery rule clears it. For
each GPU it keeps the monotonic time of the last critical event, so a recovery period
counts from the fault, whatever restarts happened since, and which scopes the events
named: the whole GPU, or one (GPU instance, compute instance) of a MIG device.

It lives in memory only. A new process (a container restart, the exit after a driver
upgrade) starts with every GPU healthy, as upstream's does: deleting the plugin's pod
is how an operator returns GPUs to service without a recovery period.
"""

from __future__ import annotations

import threading
from typing import NamedTuple

from nvlib.events import ALL_INSTANCES

Scope = tuple[int, int]  # (GPU instance, compute instance) an event named
WHOLE_GPU: Scope = (ALL_INSTANCES, ALL_INSTANCES)


def concerns(scope: Scope, mig: Scope | None) -> bool:
    """Does an event on `scope` of a GPU concern a device there (`mig` None: a full GPU)?

    A full GPU (or a replica of it) is concerned by every event on it; a MIG device by
    events on the whole GPU and on its own instances.
    """
    gi, ci = scope
    return mig is None or gi == ALL_INSTANCES or ci == ALL_INSTANCES or mig == scope


class GpuFault(NamedTuple):
    last: float  # time.monotonic() of the last critical event
    scopes: frozenset[Scope]

    def concerns(self, mig: Scope | None) -> bool:
        return any(concerns(scope, mig) for scope in self.scopes)


class NodeHealth:
    """GPU UUID -> its faults; safe to share between a monitor and its successor."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: dict[str, GpuFault] = {}

    def record(self, gpu_uuid: str, scope: Scope, at: float) -> None:
        with self._lock:
            old = self._faults.get(gpu_uuid)
            scopes = old.scopes | {scope} if old is not None else frozenset({scope})
            last = max(at, old.last) if old is not None else at
            self._faults[gpu_uuid] = GpuFault(last, scopes)

    def fault(self, gpu_uuid: str) -> GpuFault | None:
        with self._lock:
            return self._faults.get(gpu_uuid)

    def unhealthy(self, gpu_uuid: str, mig: Scope | None) -> bool:
        fault = self.fault(gpu_uuid)
        return fault is not None and fault.concerns(mig)

    def clear(self, gpu_uuid: str, quiet_since: float) -> bool:
        """Forget the GPU's faults if none came after `quiet_since`; whether it is clear.

        The condition keeps a recovery from erasing an event another monitor recorded
        between the recovering monitor's check and this call.
        """
        with self._lock:
            fault = self._faults.get(gpu_uuid)
            if fault is not None and fault.last > quiet_since:
                return False
            self._faults.pop(gpu_uuid, None)
            return True
