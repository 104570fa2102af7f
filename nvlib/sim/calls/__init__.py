"""Python implementations of the NVML C functions, one module per area.

Each function takes the simulator state and the C arguments as the callback got them
(ints for handles and pointers, bytes for `const char *`) and returns an nvmlReturn_t.
`HANDLERS` maps C symbol names to them; library.py wraps each in a ctypes callback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from nvlib.sim.state import NvmlState

Fn = Callable[..., int]
GpusOf = Callable[[NvmlState, tuple[Any, ...]], set[int]]


def handle_owners(state: NvmlState, args: tuple[Any, ...]) -> set[int]:
    """The GPUs whose handles (devices, MIG devices, instances) the call was given."""
    return {gpu for gpu in map(state.owner, args) if gpu is not None}


class Handler(NamedTuple):
    fn: Fn
    gpus_of: GpusOf  # which GPUs a call concerns: for lost GPUs and call faults


HANDLERS: dict[str, Handler] = {}


def answers(*symbols: str, gpus_of: GpusOf = handle_owners) -> Callable[[Fn], Fn]:
    def register(fn: Fn) -> Fn:
        for symbol in symbols:
            HANDLERS[symbol] = Handler(fn, gpus_of)
        return fn

    return register


def load_all() -> dict[str, Handler]:
    """Import every area once, which fills HANDLERS."""
    from nvlib.sim.calls import device, events, links, mig, system  # noqa: F401

    return HANDLERS
