"""Faults: what a profile schedules, and what is wrong with the simulated machine now.

Three kinds, in the profile and at runtime (`Simulation.inject_xid`, `fall_off_bus`,
`fail_call`, `hang_call`): an XID event on a GPU (or on one of its MIG devices), a GPU
that falls off the bus (every later call on its handles returns GPU_IS_LOST, as the
driver reports after XID 79), and an NVML call that fails with a given error or hangs
(blocks its caller for a while, or until the fault is cleared, as a wedged driver does).
Scheduled faults are applied lazily, by the next NVML call or event wait after their
time, so no timer thread runs behind the caller's back.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from nvlib.sim import _checks as check
from nvlib.sim.errors import ProfileError
from nvlib.sim.profile import FaultSpec, GpuSpec
from nvlib.sim.symbols import CALL_NAMES, call_matches

_FAULT_KEYS = ("xid", "fall_off_bus", "call", "gpu", "mig", "error", "hang", "after")
_KINDS = ("xid", "fall_off_bus", "call")


def parse_faults(value: object, gpus: tuple[GpuSpec, ...]) -> tuple[FaultSpec, ...]:
    return tuple(
        _fault(item, f"faults[{i}]", gpus) for i, item in enumerate(check.sequence(value, "faults"))
    )


def _fault(value: object, path: str, gpus: tuple[GpuSpec, ...]) -> FaultSpec:
    spec = check.mapping(value, path, _FAULT_KEYS)
    kinds = [k for k in _KINDS if k in spec]
    if len(kinds) != 1:
        raise ProfileError(path, value, "expected exactly one of xid, fall_off_bus, call")
    kind = kinds[0]
    after = check.duration(spec.get("after", 0), f"{path}.after")
    gpu = _gpu(spec.get("gpu"), f"{path}.gpu", gpus, required=kind != "call")
    extra = {k for k in ("mig", "error", "hang") if k in spec}
    allowed = {"xid": {"mig"}, "fall_off_bus": set(), "call": {"error", "hang"}}[kind]
    unused = sorted(extra - allowed)
    if unused:
        reason = {
            "mig": "only an xid fault names a MIG device",
            "error": "only a call fault has an error",
            "hang": "only a call fault hangs",
        }
        raise ProfileError(f"{path}.{unused[0]}", spec[unused[0]], reason[unused[0]])
    if kind == "xid":
        xid = check.integer(spec["xid"], f"{path}.xid", 1, 0xFFFF)
        mig = None
        if "mig" in spec:
            assert gpu is not None
            count = len(gpus[gpu].mig_devices)
            if not count:
                raise ProfileError(f"{path}.mig", spec["mig"], f"GPU {gpu} has no MIG devices")
            mig = check.integer(spec["mig"], f"{path}.mig", 0, count - 1)
        return FaultSpec("xid", after, gpu=gpu, xid=xid, mig=mig)
    if kind == "fall_off_bus":
        if spec["fall_off_bus"] is not True:
            raise ProfileError(f"{path}.fall_off_bus", spec["fall_off_bus"], "expected true")
        return FaultSpec("fall_off_bus", after, gpu=gpu)
    call = spec["call"]
    if not isinstance(call, str) or call not in CALL_NAMES:
        raise ProfileError(f"{path}.call", call, _unknown_call(call))
    if "hang" in spec:
        hang = spec["hang"]
        if "error" in spec:
            raise ProfileError(f"{path}.hang", hang, "a call fault hangs or fails, not both")
        return FaultSpec("call", after, gpu=gpu, call=call, hang=_hang(hang, f"{path}.hang"))
    if "error" not in spec:
        raise ProfileError(f"{path}.error", None, "required for a call fault (or hang)")
    return FaultSpec(
        "call", after, gpu=gpu, call=call, error=check.error_code(spec["error"], f"{path}.error")
    )


def _hang(value: object, path: str) -> float:
    """`true`: until the fault is cleared; a duration: that long per call."""
    if value is True:
        return math.inf
    if value is False:
        raise ProfileError(path, value, "expected true or a duration like '5s'")
    return check.duration(value, path)


def _unknown_call(call: object) -> str:
    import difflib

    close = difflib.get_close_matches(str(call), sorted(CALL_NAMES), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return "not an NVML function the simulator answers" + hint


def _gpu(value: object, path: str, gpus: tuple[GpuSpec, ...], required: bool) -> int | None:
    if value is None:
        if required:
            raise ProfileError(path, None, "required")
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < len(gpus):
        raise ProfileError(path, value, f"no such GPU index; the profile has {len(gpus)} GPUs")
    return value


class CallFailure(NamedTuple):
    call: str
    gpu: int | None  # None: every call of that name
    error: int


class CallHang(NamedTuple):
    call: str
    gpu: int | None  # None: every call of that name
    seconds: float  # how long each call blocks; math.inf: until the fault is cleared


class FaultBook:
    """The machine's faults: GPUs off the bus, failing and hanging calls, and what is
    still scheduled."""

    def __init__(self, specs: tuple[FaultSpec, ...], start: float) -> None:
        self.pending = sorted(((start + s.after, i, s) for i, s in enumerate(specs)))
        self.lost: set[int] = set()
        self.failures: list[CallFailure] = []
        self.hangs: list[CallHang] = []

    def next_due(self) -> float | None:
        return self.pending[0][0] if self.pending else None

    def take_due(self, now: float) -> list[tuple[float, FaultSpec]]:
        """Scheduled faults whose time has come, with that time, oldest first."""
        due = []
        while self.pending and self.pending[0][0] <= now:
            when, _, spec = self.pending.pop(0)
            due.append((when, spec))
        return due

    def failure(self, symbol: str, gpus: set[int]) -> int | None:
        """The error a failing-call fault makes `symbol` return on these GPUs, if any.

        A fault without a GPU matches every call of that name; one with a GPU matches
        calls on that GPU's handles (its MIG devices and instances included).
        """
        for failure in reversed(self.failures):  # the latest injection wins
            if call_matches(failure.call, symbol) and (failure.gpu is None or failure.gpu in gpus):
                return failure.error
        return None

    def hang(self, symbol: str, gpus: set[int]) -> CallHang | None:
        """The hang fault that applies to `symbol` on these GPUs, if any (as `failure`)."""
        for hang in reversed(self.hangs):
            if call_matches(hang.call, symbol) and (hang.gpu is None or hang.gpu in gpus):
                return hang
        return None

    def hanging(self, hang: CallHang) -> bool:
        """Whether this very fault is still in force (clear_faults ends it)."""
        return any(h is hang for h in self.hangs)

    def clear(self) -> None:
        self.pending.clear()
        self.lost.clear()
        self.failures.clear()
        self.hangs.clear()
