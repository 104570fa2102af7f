"""Installing the simulator beneath pynvml, and the handle a caller keeps on it.

`activate` resolves the profile, writes its host tree, and puts a SimulatedLibrary
where pynvml keeps the loaded libnvidia-ml, so every pynvml wrapper runs unchanged.
One simulation is active at a time; activating another replaces it.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType

import pynvml

from nvlib.sim import _checks as check
from nvlib.sim.errors import ProfileError
from nvlib.sim.faults import CallFailure
from nvlib.sim.host import DRIVER_ROOT, build_host_tree
from nvlib.sim.library import SimulatedLibrary
from nvlib.sim.profile import Profile, load_profile
from nvlib.sim.state import NvmlState
from nvlib.sim.symbols import CALL_NAMES

_lock = threading.Lock()
_SHM = "/dev/shm"
_active: Simulation | None = None


class Simulation:
    """An active simulated machine: its profile, host tree, and runtime faults."""

    def __init__(self, profile: Profile, root: Path, owns_root: bool) -> None:
        self.profile = profile
        self.root = root
        self.driver_root = root / DRIVER_ROOT
        self._owns_root = owns_root
        self.device_nodes: dict[str, tuple[int, int]] = build_host_tree(root, profile)
        self._state = NvmlState(profile)
        self._library = SimulatedLibrary(self._state)
        self._closed = False

    @property
    def active(self) -> bool:
        return not self._closed

    @property
    def internal_errors(self) -> list[BaseException]:
        """Exceptions raised inside simulated calls (each answered UNKNOWN): simulator bugs."""
        return list(self._state.internal_errors)

    def _install(self) -> None:
        with pynvml.libLoadLock:
            pynvml.nvmlLib = self._library
            pynvml._nvmlGetFunctionPointer_cache.clear()
            pynvml._nvmlLib_refcount = 0

    def deactivate(self) -> None:
        """Take the simulator from beneath pynvml and remove a host tree it created."""
        global _active
        with _lock:
            if self._closed:
                return
            self._closed = True
            with self._state.cond:
                self._state.closed = True  # a thread in an event wait returns at once
                self._state.cond.notify_all()
            with pynvml.libLoadLock:
                if pynvml.nvmlLib is self._library:
                    pynvml.nvmlLib = None
                pynvml._nvmlGetFunctionPointer_cache.clear()
                pynvml._nvmlLib_refcount = 0
            if _active is self:
                _active = None
            if self._owns_root:
                shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Simulation:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.deactivate()

    # Runtime faults: effective for the next NVML call, and an event wait wakes at once.

    def _gpu(self, gpu: int) -> int:
        if (
            isinstance(gpu, bool)
            or not isinstance(gpu, int)
            or not 0 <= gpu < len(self.profile.gpus)
        ):
            raise ValueError(f"no GPU {gpu!r}: the profile has {len(self.profile.gpus)}")
        return gpu

    def inject_xid(self, gpu: int, xid: int, mig: int | None = None) -> None:
        """An XID on a GPU, or on one of its MIG devices (by MIG device index)."""
        self._gpu(gpu)
        if mig is not None and not 0 <= mig < len(self.profile.gpus[gpu].mig_devices):
            raise ValueError(f"GPU {gpu} has no MIG device {mig}")
        with self._state.cond:
            self._state.xid(gpu, xid, mig, time.monotonic())

    def fall_off_bus(self, gpu: int) -> None:
        """From now on every call on the GPU's handles returns GPU_IS_LOST (and XID 79)."""
        self._gpu(gpu)
        with self._state.cond:
            self._state.lose(gpu, time.monotonic())

    def recover(self, gpu: int) -> None:
        """The GPU is back on the bus."""
        self._gpu(gpu)
        with self._state.cond:
            self._state.faults.lost.discard(gpu)

    def fail_call(self, call: str, error: str | int, gpu: int | None = None) -> None:
        """Make an NVML call fail, on one GPU's handles or everywhere.

        `call` is a C function or pynvml wrapper name (every version of it fails);
        `error` an NVML_ERROR_* suffix such as "UNKNOWN", or the code.
        """
        if call not in CALL_NAMES:
            raise ProfileError("call", call, "not an NVML function the simulator answers")
        code = error if isinstance(error, int) else check.error_code(error, "error")
        if gpu is not None:
            self._gpu(gpu)
        with self._state.cond:
            self._state.faults.failures.append(CallFailure(call, gpu, code))

    def clear_faults(self) -> None:
        """Cancel scheduled faults, stop failing calls, bring lost GPUs back.

        Events already delivered stay queued: they happened.
        """
        with self._state.cond:
            self._state.faults.clear()
            self._state.cond.notify_all()


def activate(profile: str | Path | Profile, root: Path | None = None) -> Simulation:
    """Simulate `profile` (a built-in name, a YAML path or a Profile) beneath pynvml.

    The host tree goes to `root`, or to a temporary directory removed on deactivate.
    """
    global _active
    resolved = profile if isinstance(profile, Profile) else load_profile(profile)
    with _lock:
        previous = _active
    if previous is not None:
        previous.deactivate()
    owns_root = root is None
    path = Path(tempfile.mkdtemp(prefix="nvlib-sim-", dir=_fast_tmp())) if owns_root else Path(root)
    try:
        path.mkdir(parents=True, exist_ok=True)
        simulation = Simulation(resolved, path, owns_root)
    except BaseException:
        if owns_root:
            shutil.rmtree(path, ignore_errors=True)
        raise
    with _lock:
        simulation._install()
        _active = simulation
    return simulation


def _fast_tmp() -> str | None:
    """/dev/shm where writable: a tmpfs writes the ~200 entries of a host tree ten times
    faster than a disk-backed /tmp. None: the default temporary directory."""
    return _SHM if os.path.isdir(_SHM) and os.access(_SHM, os.W_OK | os.X_OK) else None


def active() -> Simulation | None:
    return _active


@atexit.register
def _deactivate_at_exit() -> None:
    # A command run with --nvml-mock may exit without deactivating: drop the temp tree.
    current = _active
    if current is not None:
        current.deactivate()
