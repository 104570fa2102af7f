"""Writing answers into the caller's memory, as the NVML C functions do.

The callbacks get raw addresses (`c_void_p` arguments). Strings honour the caller's
buffer size; structures are pynvml's own classes laid over the caller's memory, so a
layout that pynvml and the simulator disagree on cannot go unnoticed.
"""

from __future__ import annotations

import ctypes
from typing import Any, TypeVar

import pynvml

S = TypeVar("S", bound=ctypes.Structure)
P = TypeVar("P", bound="ctypes._Pointer[Any]")

SUCCESS = pynvml.NVML_SUCCESS
INVALID_ARGUMENT = pynvml.NVML_ERROR_INVALID_ARGUMENT


def put_text(address: int | None, size: int, text: str) -> int:
    """Copy `text` and its NUL into a `size`-byte buffer, or say the buffer is too small."""
    if not address:
        return INVALID_ARGUMENT
    data = text.encode() + b"\0"
    if len(data) > size:
        return pynvml.NVML_ERROR_INSUFFICIENT_SIZE
    ctypes.memmove(address, data, len(data))
    return SUCCESS


def put(address: int | None, ctype: type[ctypes._SimpleCData[Any]], value: object) -> int:
    if not address:
        return INVALID_ARGUMENT
    ctype.from_address(address).value = value
    return SUCCESS


def put_handle(address: int | None, handle: int) -> int:
    return put(address, ctypes.c_void_p, handle)


def at(address: int, struct: type[S]) -> S:
    """pynvml's structure class laid over the caller's memory: writes go to the caller."""
    fast = _FAST.get(struct)
    if fast is None:
        fast = _FAST[struct] = _without_hooks(struct)
    # a subclass of `struct` (_without_hooks), so its instance is an S
    return fast.from_address(address)  # type: ignore[return-value]


# pynvml's structures run every field read and write through Python-level
# __getattribute__/__setattr__ (str <-> bytes conversion); a simulated call fills up to a
# dozen fields, and those hooks were a tenth of a discovery pass. A subclass with object's
# own hooks keeps pynvml's class and layout (it adds no fields); the simulator writes
# bytes itself, and a str written by mistake raises, which dispatch reports as a bug.
_FAST: dict[type[ctypes.Structure], type[ctypes.Structure]] = {}


def _without_hooks(struct: type[S]) -> type[S]:
    hooks = {"__getattribute__": object.__getattribute__, "__setattr__": object.__setattr__}
    return type(struct.__name__, (struct,), hooks)


def as_pointer(handle: int, pointer_type: type[P]) -> P:
    """A handle value as the pointer type a pynvml structure field holds."""
    return ctypes.cast(handle, pointer_type)
