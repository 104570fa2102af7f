"""The one module that imports `pynvml`.

It owns NVML init/shutdown, bytes-to-str, and the translation of `NVMLError_*` into the
project's errors, so that nothing outside `nvlib` holds a handle or catches a pynvml
exception. Whether the library underneath is a real libnvidia-ml or the simulator makes no
difference here: both answer the same C calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import pynvml

T = TypeVar("T")

NVMLError = pynvml.NVMLError


class NvmlError(RuntimeError):
    """An NVML call failed in a way the caller cannot treat as "feature absent"."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class NvmlInitError(NvmlError):
    """NVML could not be loaded or initialised (no driver, or the simulator refused)."""


def error_text(err: BaseException) -> str:
    """NVML's own wording (`Not Supported`, `Unknown Error`), as upstream logs it."""
    return str(err)


# What a long-running command logs before it exits on `is_library_mismatch`.
LIBRARY_MISMATCH_EXIT = (
    "The NVIDIA driver changed under this process (library/kernel module version "
    "mismatch); exiting so that a restart loads the new driver"
)


def is_library_mismatch(err: BaseException) -> bool:
    """NVML init failed because the kernel module is not the loaded library's version.

    After a driver upgrade a long-running process still holds the old libnvidia-ml;
    only a new process loads the new one, so the caller should exit and be restarted.
    """
    return isinstance(err, NvmlInitError) and err.code == pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH


def is_absent(err: pynvml.NVMLError) -> bool:
    """NotSupported / FunctionNotFound mean this GPU or driver lacks the feature."""
    return isinstance(err, pynvml.NVMLError_NotSupported | pynvml.NVMLError_FunctionNotFound)


def optional(call: Callable[[], T]) -> T | None:
    """Run an NVML query whose NotSupported answer means "absent", not failure."""
    try:
        return call()
    except pynvml.NVMLError as err:
        if is_absent(err):
            return None
        raise


def text(value: str | bytes) -> str:
    """pynvml returns str from most wrappers but bytes from some struct fields."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").rstrip("\0")
    return value


def init() -> None:
    """nvmlInit; NvmlInitError when NVML cannot be loaded or initialised."""
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as err:
        raise NvmlInitError(error_text(err), getattr(err, "value", None)) from err


def shutdown() -> None:
    """nvmlShutdown, pairing an `init`; a failure is swallowed."""
    try:
        pynvml.nvmlShutdown()
    except pynvml.NVMLError:
        # A failed shutdown must not hide the caller's own result or error.
        pass


@contextmanager
def session() -> Iterator[None]:
    """nvmlInit ... nvmlShutdown around one discovery pass (upstream does the same per pass)."""
    init()
    try:
        yield
    finally:
        shutdown()
