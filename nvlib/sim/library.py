"""The object installed as `pynvml.nvmlLib`: NVML's C symbols as ctypes callbacks.

pynvml resolves each C function with `getattr(nvmlLib, name)` and calls it with
ctypes arguments. Here each name becomes a CFUNCTYPE callback with the C signature
(symbols.py), built on first use: the call goes through ctypes exactly as a call into
libnvidia-ml would, so wrong argument types, struct versions and buffer sizes show up
in simulation too. An unknown name raises AttributeError, which pynvml reports as
NVMLError_FunctionNotFound, as an older driver would.
"""

from __future__ import annotations

import ctypes
import logging
import math
import time
from typing import Any

import pynvml

from nvlib.sim.calls import Handler, load_all
from nvlib.sim.faults import CallHang
from nvlib.sim.state import NvmlState
from nvlib.sim.symbols import NO_INIT_NEEDED, SIGNATURES

log = logging.getLogger(__name__)

_PROTOTYPES: dict[tuple[type, ...], type] = {}

# nvmlErrorString returns a `const char *` that stays valid: one buffer per code, kept.
_ERROR_TEXT: dict[int, ctypes.Array[ctypes.c_char]] = {}
_EXTRA_ERROR_TEXT = {
    pynvml.NVML_SUCCESS: "Success",
    pynvml.NVML_ERROR_IN_USE: "In use by another client",
    pynvml.NVML_ERROR_NO_DATA: "No data",
    pynvml.NVML_ERROR_INSUFFICIENT_RESOURCES: "Insufficient resources",
    pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH: "Argument version mismatch",
    pynvml.NVML_ERROR_DEPRECATED: "Deprecated",
    pynvml.NVML_ERROR_NOT_READY: "Not ready",
    pynvml.NVML_ERROR_GPU_NOT_FOUND: "GPU not found",
    pynvml.NVML_ERROR_INVALID_STATE: "Invalid state",
}


def error_text_address(code: int) -> int:
    if code not in _ERROR_TEXT:
        text = _EXTRA_ERROR_TEXT.get(code) or pynvml.NVMLError._errcode_to_string.get(code)
        _ERROR_TEXT[code] = ctypes.create_string_buffer((text or "Unknown Error").encode())
    return ctypes.addressof(_ERROR_TEXT[code])


def _prototype(restype: type, argtypes: tuple[type, ...]) -> type:
    key = (restype, *argtypes)
    if key not in _PROTOTYPES:
        _PROTOTYPES[key] = ctypes.CFUNCTYPE(restype, *argtypes)
    return _PROTOTYPES[key]


class SimulatedLibrary:
    """Stands where pynvml keeps its CDLL; attributes are the simulated C functions."""

    def __init__(self, state: NvmlState) -> None:
        self._state = state
        self._handlers = load_all()

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in SIGNATURES:
            raise AttributeError(name)
        if name == "nvmlErrorString":
            fn = _prototype(ctypes.c_void_p, SIGNATURES[name])(_error_string)
        else:
            handler = self._handlers[name]
            state = self._state

            def call(*args: Any) -> int:
                return dispatch(state, name, handler, args)

            fn = _prototype(ctypes.c_int, SIGNATURES[name])(call)
        # Cached on the instance: pynvml may change restype on it (nvmlErrorString does),
        # and the callback must live as long as anyone holds the function.
        self.__dict__[name] = fn
        return fn


def _error_string(code: int) -> int:
    try:
        return error_text_address(code)
    except Exception:  # a callback must not raise: ctypes would print and return 0
        log.exception("nvmlErrorString(%d) failed in the simulator", code)
        return error_text_address(pynvml.NVML_ERROR_UNKNOWN)


def dispatch(state: NvmlState, name: str, handler: Handler, args: tuple[Any, ...]) -> int:
    """Run one simulated C call: init check, scheduled faults, lost GPUs, injected errors
    and hangs.

    Every call pays for this, so the fault checks cost nothing on a machine without
    faults: the clock is read only while a fault is scheduled, and which GPUs the call
    concerns is worked out only while a call fault or a lost GPU could apply to it.
    """
    with state.lock:  # the condition's lock, entered without the Condition's wrapper
        state.calls[name] = state.calls.get(name, 0) + 1
        try:
            if state.closed:
                return pynvml.NVML_ERROR_UNINITIALIZED
            faults = state.faults
            if faults.pending:
                state.apply_due(time.monotonic())
            gpus = failure = hang = None
            if faults.failures or faults.lost or faults.hangs:
                gpus = handler.gpus_of(state, args)
                failure = faults.failure(name, gpus)
                hang = faults.hang(name, gpus)
            if state.init_count == 0 and name not in NO_INIT_NEEDED:
                return pynvml.NVML_ERROR_UNINITIALIZED
            if hang is not None and not _hang(state, hang):
                return pynvml.NVML_ERROR_UNINITIALIZED
            if failure is not None:
                return failure
            if gpus and gpus & faults.lost:
                return pynvml.NVML_ERROR_GPU_IS_LOST
            return handler.fn(state, *args)
        except Exception as err:  # a callback must not raise: ctypes would return 0, success
            state.internal_errors.append(err)
            log.exception("simulated %s failed", name)
            return pynvml.NVML_ERROR_UNKNOWN


def _hang(state: NvmlState, hang: CallHang) -> bool:
    """Block the calling thread as a wedged driver call would; False if deactivated.

    It sleeps on the state's condition, which lets go of the lock (and the GIL): every
    other thread's NVML calls go on, and clear_faults or deactivate wake it at once.
    """
    deadline = time.monotonic() + hang.seconds
    while state.faults.hanging(hang) and not state.closed:
        if hang.seconds == math.inf:
            state.cond.wait()
            continue
        left = deadline - time.monotonic()
        if left <= 0:
            break
        state.cond.wait(left)
    return not state.closed
