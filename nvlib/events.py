"""NVML events for health checking: one event set, GPUs named by UUID, events as plain values.

The pynvml side of the device plugin's health monitor (docs/deviceplugin.md#health): NVML's
init and the event set's create / register / wait / free, the probe that asks whether
NVML still reaches a GPU, and the decoding of an event into an `Event` of ints and
strings. Which events count, which devices they mark and when a GPU comes back is the
caller's policy; it never holds a handle or catches a pynvml exception. Failures reach
it as `NvmlError` (`NvmlInitError` when NVML does not load) in NVML's own wording.
"""

from __future__ import annotations

import ctypes
import logging
from typing import NamedTuple

import pynvml

from nvlib.nvml import NvmlError, error_text, init, shutdown, text

log = logging.getLogger(__name__)

ALL_INSTANCES = 0xFFFFFFFF  # GPU/compute instance of an event on the whole GPU
# The `NvmlError.code` of a call made after NVML was shut down under its caller.
UNINITIALIZED = pynvml.NVML_ERROR_UNINITIALIZED
XID_CRITICAL = pynvml.nvmlEventTypeXidCriticalError
# What a GPU is registered for (upstream's mask), cut down to what it supports.
EVENT_MASK = (
    pynvml.nvmlEventTypeXidCriticalError
    | pynvml.nvmlEventTypeDoubleBitEccError
    | pynvml.nvmlEventTypeSingleBitEccError
)


class Event(NamedTuple):
    """One NVML event, decoded."""

    event_type: int  # NVML's event type bit: XID_CRITICAL, or an ECC error
    data: int  # the XID of an XID event
    gpu_uuid: str | None  # the GPU it happened on; None: NVML could not say (uuid_error)
    gpu_instance: int  # ALL_INSTANCES: the event concerns the whole GPU
    compute_instance: int
    uuid_error: str = ""

    @property
    def xid(self) -> int | None:
        """The XID of a critical XID event; None for any other event."""
        return self.data if self.event_type == XID_CRITICAL else None


class RegistrationError(NvmlError):
    """Registering a GPU's events failed; `step` says where, for the caller's wording.

    `handle`: no handle for the UUID; `supported`: the supported event types could not
    be read; `register`: the registration itself failed (other than NotSupported).
    """

    def __init__(self, step: str, message: str, code: int | None = None) -> None:
        super().__init__(message, code)
        self.step = step


def _code(err: pynvml.NVMLError) -> int | None:
    return getattr(err, "value", None)


def _error(err: pynvml.NVMLError) -> NvmlError:
    return NvmlError(error_text(err), _code(err))


class EventSet:
    """An NVML session holding one event set: `EventSet.open()` ... `close()`.

    The GPUs registered are remembered by handle, so an event names its GPU without
    asking NVML, which a GPU that fell off the bus no longer answers.
    """

    def __init__(self, event_set: object) -> None:
        self._set = event_set
        self._uuids: dict[int | None, str] = {}  # handle address -> GPU UUID

    @classmethod
    def open(cls) -> EventSet:
        """Initialise NVML and create the set.

        Raises NvmlInitError when NVML does not load, NvmlError when the set cannot be
        created (NVML is shut down again then).
        """
        init()
        try:
            event_set = pynvml.nvmlEventSetCreate()
        except pynvml.NVMLError as err:
            shutdown()
            raise _error(err) from err
        return cls(event_set)

    def register(self, gpu_uuid: str) -> bool:
        """Register the GPU's critical events; False when it is too old to report them.

        Raises RegistrationError for any failure other than NotSupported.
        """
        try:
            handle = pynvml.nvmlDeviceGetHandleByUUID(gpu_uuid)
        except pynvml.NVMLError as err:
            raise RegistrationError("handle", error_text(err), _code(err)) from err
        try:
            supported = pynvml.nvmlDeviceGetSupportedEventTypes(handle)
        except pynvml.NVMLError as err:
            raise RegistrationError("supported", error_text(err), _code(err)) from err
        try:
            pynvml.nvmlDeviceRegisterEvents(handle, EVENT_MASK & supported, self._set)
        except pynvml.NVMLError_NotSupported:
            return False
        except pynvml.NVMLError as err:
            raise RegistrationError("register", error_text(err), _code(err)) from err
        self._uuids[_address(handle)] = gpu_uuid
        return True

    def wait(self, timeout_ms: int) -> Event | None:
        """The next event, or None when none came within the timeout (NvmlError on failure)."""
        try:
            raw = pynvml.nvmlEventSetWait_v2(self._set, timeout_ms)
        except pynvml.NVMLError_Timeout:
            return None
        except pynvml.NVMLError as err:
            raise _error(err) from err
        event_type = int(raw.eventType)
        gpu_uuid = self._uuids.get(_address(raw.device))
        uuid_error = ""
        if gpu_uuid is None and event_type == XID_CRITICAL:
            try:
                gpu_uuid = text(pynvml.nvmlDeviceGetUUID(raw.device))
            except pynvml.NVMLError as err:
                uuid_error = error_text(err)
        return Event(
            event_type,
            int(raw.eventData),
            gpu_uuid,
            int(raw.gpuInstanceId),
            int(raw.computeInstanceId),
            uuid_error,
        )

    def close(self) -> None:
        """Free the set and shut NVML down; a failure is logged, never raised."""
        try:
            pynvml.nvmlEventSetFree(self._set)
        except pynvml.NVMLError as err:  # NVML may be shut down under a stopping owner
            log.debug("Failed to free event set: %s", error_text(err))
        shutdown()


def probe(gpu_uuid: str) -> None:
    """Does NVML still reach this GPU? Its handle, PCI info and memory must all answer.

    Raises NvmlError when one does not.
    """
    try:
        handle = pynvml.nvmlDeviceGetHandleByUUID(gpu_uuid)
        pynvml.nvmlDeviceGetPciInfo(handle)
        pynvml.nvmlDeviceGetMemoryInfo(handle)
    except pynvml.NVMLError as err:
        raise _error(err) from err


def _address(handle: object) -> int | None:
    """The pointer value of an NVML device handle, to compare handles by."""
    # a ctypes pointer at run time; pynvml leaves its handles untyped
    return ctypes.cast(handle, ctypes.c_void_p).value  # type: ignore[arg-type]
