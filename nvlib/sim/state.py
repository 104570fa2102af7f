"""The simulated NVML's live state: handles, init count, faults and event sets.

The objects are ordinary slotted classes, not records: each has an identity (its
handle) and they point at each other both ways, so field equality and a field repr
would be wrong for them.

One condition variable guards it all. Every callback holds it while it runs, and an
event wait sleeps on it, which releases it (and the GIL) so that other threads, an
XID injection among them, go on.
"""

from __future__ import annotations

import ctypes
import time
from collections import deque
from threading import Condition, RLock
from typing import NamedTuple

import pynvml

from nvlib.sim.faults import CallFailure, CallHang, FaultBook
from nvlib.sim.profile import CiProfile, FaultSpec, GiProfile, GpuSpec, MigSpec, Profile

XID_GPU_FELL_OFF_BUS = 79
NO_INSTANCE = 0xFFFFFFFF  # gpuInstanceId / computeInstanceId of an event on a full GPU

# Handles are addresses of memory kept for the life of the process, so that a stale
# handle never points at something reused, and an accidental dereference reads zeros.
_KEEP: list[ctypes.Array[ctypes.c_ubyte]] = []


def _addresses(count: int) -> list[int]:
    block = (ctypes.c_ubyte * (16 * max(count, 1)))()
    _KEEP.append(block)
    base = ctypes.addressof(block)
    return [base + 16 * i for i in range(count)]


class Gpu:
    __slots__ = ("gis", "handle", "migs", "spec")

    def __init__(self, spec: GpuSpec, handle: int) -> None:
        self.spec = spec
        self.handle = handle
        self.migs: list[Mig] = []
        self.gis: dict[int, GpuInstance] = {}

    @property
    def index(self) -> int:
        return self.spec.index


class GpuInstance:
    __slots__ = ("cis", "gpu", "handle", "id", "profile", "start")

    def __init__(self, gpu: Gpu, gi_id: int, profile: GiProfile, start: int, handle: int) -> None:
        self.gpu = gpu
        self.id = gi_id
        self.profile = profile
        self.start = start
        self.handle = handle
        self.cis: dict[int, ComputeInstance] = {}


class ComputeInstance:
    __slots__ = ("gi", "handle", "id", "profile")

    def __init__(self, gi: GpuInstance, ci_id: int, profile: CiProfile, handle: int) -> None:
        self.gi = gi
        self.id = ci_id
        self.profile = profile
        self.handle = handle


class Mig:
    __slots__ = ("ci", "gi", "gpu", "handle", "spec")

    def __init__(
        self, gpu: Gpu, spec: MigSpec, handle: int, gi: GpuInstance, ci: ComputeInstance
    ) -> None:
        self.gpu = gpu
        self.spec = spec
        self.handle = handle
        self.gi = gi
        self.ci = ci


class Event(NamedTuple):
    gpu: int
    type: int
    data: int
    gi: int = NO_INSTANCE
    ci: int = NO_INSTANCE


class EventSet:
    __slots__ = ("handle", "queue", "registered")

    def __init__(self, handle: int) -> None:
        self.handle = handle
        self.registered: dict[int, tuple[int, float]] = {}  # GPU index: (mask, since)
        self.queue: deque[Event] = deque()


Device = Gpu | Mig
Owned = Gpu | Mig | GpuInstance | ComputeInstance


class NvmlState:
    def __init__(self, profile: Profile, started: float | None = None) -> None:
        """`started`: when the simulation was activated (scheduled faults count from it);
        the state itself is built on first use, later."""
        self.profile = profile
        self.lock = RLock()  # what every callback holds; `cond` waits on it
        self.cond = Condition(self.lock)
        self.init_count = 0
        self.closed = False
        self.started = time.monotonic() if started is None else started
        self.faults = FaultBook(profile.faults, self.started)
        self.objects: dict[int, Owned] = {}
        self.event_sets: dict[int, EventSet] = {}
        self.internal_errors: list[BaseException] = []
        self.calls: dict[str, int] = {}  # C function -> times called, answered or not
        self.gpus = self._build(profile)
        self.by_uuid: dict[str, Device] = {g.spec.uuid: g for g in self.gpus}
        self.by_uuid.update((m.spec.uuid, m) for g in self.gpus for m in g.migs)

    def _build(self, profile: Profile) -> list[Gpu]:
        count = sum(1 + 3 * len(g.mig_devices) for g in profile.gpus)
        free = iter(_addresses(count))
        gpus = []
        for spec in profile.gpus:
            gpu = Gpu(spec, next(free))
            self.objects[gpu.handle] = gpu
            for mig_spec in spec.mig_devices:
                gi = GpuInstance(
                    gpu, mig_spec.gi_id, mig_spec.gi_profile, mig_spec.gi_start, next(free)
                )
                ci = ComputeInstance(gi, mig_spec.ci_id, mig_spec.ci_profile, next(free))
                mig = Mig(gpu, mig_spec, next(free), gi, ci)
                gi.cis[ci.id] = ci
                gpu.gis[gi.id] = gi
                gpu.migs.append(mig)
                self.objects.update({gi.handle: gi, ci.handle: ci, mig.handle: mig})
            gpus.append(gpu)
        return gpus

    # Lookups: None for a handle that is not of the asked kind.

    def device(self, handle: int | None) -> Device | None:
        obj = self.objects.get(handle) if handle else None
        return obj if isinstance(obj, (Gpu, Mig)) else None

    def gpu(self, handle: int | None) -> Gpu | None:
        obj = self.objects.get(handle) if handle else None
        return obj if isinstance(obj, Gpu) else None

    def gpu_instance(self, handle: int | None) -> GpuInstance | None:
        obj = self.objects.get(handle) if handle else None
        return obj if isinstance(obj, GpuInstance) else None

    def compute_instance(self, handle: int | None) -> ComputeInstance | None:
        obj = self.objects.get(handle) if handle else None
        return obj if isinstance(obj, ComputeInstance) else None

    def owner(self, value: object) -> int | None:
        """The GPU index behind a handle argument of any kind, else None."""
        obj = self.objects.get(value) if type(value) is int else None
        if obj is None:
            return None
        if isinstance(obj, GpuInstance):
            return obj.gpu.index
        if isinstance(obj, ComputeInstance):
            return obj.gi.gpu.index
        return obj.gpu.index if isinstance(obj, Mig) else obj.index

    # Events

    def new_event_set(self) -> EventSet:
        events = EventSet(_addresses(1)[0])
        self.event_sets[events.handle] = events
        return events

    def deliver(self, event: Event, when: float) -> None:
        """Queue `event` on every set that had registered its GPU for its type by `when`."""
        for events in self.event_sets.values():
            mask, since = events.registered.get(event.gpu, (0, 0.0))
            if mask & event.type and since <= when:
                events.queue.append(event)
        self.cond.notify_all()

    # Faults, scheduled or injected (the lock is held by the caller)

    def apply_due(self, now: float) -> None:
        for when, spec in self.faults.take_due(now):
            self._apply(spec, when)

    def _apply(self, spec: FaultSpec, when: float) -> None:
        assert spec.kind == "call" or spec.gpu is not None
        if spec.kind == "xid":
            self.xid(spec.gpu or 0, spec.xid or 0, spec.mig, when)
        elif spec.kind == "fall_off_bus":
            self.lose(spec.gpu or 0, when)
        elif spec.hang is not None:
            self.faults.hangs.append(CallHang(spec.call or "", spec.gpu, spec.hang))
        else:
            self.faults.failures.append(CallFailure(spec.call or "", spec.gpu, spec.error or 0))

    def xid(self, gpu: int, xid: int, mig: int | None, when: float) -> None:
        gi = ci = NO_INSTANCE
        if mig is not None:
            target = self.gpus[gpu].migs[mig]
            gi, ci = target.gi.id, target.ci.id
        self.deliver(Event(gpu, pynvml.nvmlEventTypeXidCriticalError, xid, gi, ci), when)

    def lose(self, gpu: int, when: float) -> None:
        """Off the bus: the driver logs XID 79, and every call on the GPU fails after."""
        if gpu not in self.faults.lost:
            self.faults.lost.add(gpu)
            self.xid(gpu, XID_GPU_FELL_OFF_BUS, None, when)
