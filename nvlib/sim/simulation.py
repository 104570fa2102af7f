"""Installing the simulator beneath pynvml, and the handle a caller keeps on it.

`activate` resolves the profile, writes the host tree's sysfs, DMI and procfs, and puts
a library object where pynvml keeps the loaded libnvidia-ml, so every pynvml wrapper
runs unchanged. One simulation is active at a time; activating another replaces it.

A command start pays for everything done here, so the rest waits for its first use:
the driver root is written when `driver_root` or `device_nodes` is first read, and
the NVML state and its ctypes callbacks (library.py, state.py, calls/) are built on
the first C symbol pynvml looks up, or the first runtime fault.
"""

from __future__ import annotations

import atexit
import os
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pynvml

from nvlib.sim.host import DRIVER_ROOT, HostTree, device_nodes
from nvlib.sim.profile import Profile, load_profile

if TYPE_CHECKING:  # the ctypes layer loads on the first NVML call
    from nvlib.sim.library import SimulatedLibrary
    from nvlib.sim.state import NvmlState

_lock = threading.Lock()
_SHM = "/dev/shm"
_active: Simulation | None = None


class Simulation:
    """An active simulated machine: its profile, host tree, and runtime faults."""

    def __init__(self, profile: Profile, root: Path, owns_root: bool) -> None:
        self.profile = profile
        self.root = root
        self._owns_root = owns_root
        self._started = time.monotonic()  # scheduled faults count from here
        self._tree = HostTree(str(root), profile)
        self._tree.write_base()
        self._nodes: dict[str, tuple[int, int]] | None = None
        # Not _lock: pynvml looks symbols up holding its libLoadLock, which deactivate
        # takes while holding _lock.
        self._lazy = threading.Lock()
        self._nvml: NvmlState | None = None
        self._simulated: SimulatedLibrary | None = None
        self._library = _Library(self)
        self._closed = False

    @property
    def driver_root(self) -> Path:
        """`root/driver`, written on first use: libraries, binaries, device nodes."""
        self._write_driver_root()
        return self.root / DRIVER_ROOT

    @property
    def device_nodes(self) -> dict[str, tuple[int, int]]:
        """Placeholder device nodes under the driver root (written on first use)."""
        self._write_driver_root()
        assert self._nodes is not None
        return self._nodes

    def _write_driver_root(self) -> None:
        if self._nodes is None:
            with _lock:
                if self._nodes is None:
                    self._nodes = (
                        device_nodes(self.profile)
                        if self._closed  # a removed tree stays removed
                        else self._tree.write_driver()
                    )

    @property
    def _state(self) -> NvmlState:
        """The NVML state, built on first use."""
        state = self._nvml
        if state is None:
            from nvlib.sim.state import NvmlState

            with self._lazy:
                state = self._nvml
                if state is None:
                    state = NvmlState(self.profile, self._started)
                    state.closed = self._closed
                    self._nvml = state
        return state

    def _simulated_library(self) -> SimulatedLibrary:
        library = self._simulated
        if library is None:
            from nvlib.sim.library import SimulatedLibrary

            built = SimulatedLibrary(self._state)  # outside the lock: it imports calls/
            with self._lazy:
                if self._simulated is None:
                    self._simulated = built
                library = self._simulated
        return library

    @property
    def active(self) -> bool:
        return not self._closed

    @property
    def internal_errors(self) -> list[BaseException]:
        """Exceptions raised inside simulated calls (each answered UNKNOWN): simulator bugs."""
        return [] if self._nvml is None else list(self._nvml.internal_errors)

    def nvml_calls(self) -> dict[str, int]:
        """How many times each NVML C function was called since activation (a copy).

        What a caller's NVML traffic costs, for tests that bound it: every call counts,
        whatever it answered (nvmlErrorString, which answers no nvmlReturn_t, aside).
        """
        state = self._nvml
        if state is None:
            return {}
        with state.lock:
            return dict(state.calls)

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
            with self._lazy:
                self._closed = True
                state = self._nvml
            if state is not None:
                with state.cond:
                    state.closed = True  # a thread in an event wait returns at once
                    state.cond.notify_all()
            with pynvml.libLoadLock:
                if pynvml.nvmlLib is self._library:
                    pynvml.nvmlLib = None
                pynvml._nvmlGetFunctionPointer_cache.clear()
                pynvml._nvmlLib_refcount = 0
            if _active is self:
                _active = None
            if self._owns_root:
                self._tree.remove()

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
        from nvlib.sim import _checks as check
        from nvlib.sim.faults import CallFailure
        from nvlib.sim.symbols import CALL_NAMES

        if call not in CALL_NAMES:
            from nvlib.sim.errors import ProfileError

            raise ProfileError("call", call, "not an NVML function the simulator answers")
        code = error if isinstance(error, int) else check.error_code(error, "error")
        if gpu is not None:
            self._gpu(gpu)
        with self._state.cond:
            self._state.faults.failures.append(CallFailure(call, gpu, code))

    def hang_call(self, call: str, seconds: float | None = None, gpu: int | None = None) -> None:
        """Make an NVML call hang, on one GPU's handles or everywhere.

        Each such call blocks its caller for `seconds` and then answers as usual, or, with
        None, until `clear_faults` (then it answers) or deactivate (UNINITIALIZED).
        Other threads' calls go on meanwhile.
        """
        import math

        from nvlib.sim.faults import CallHang
        from nvlib.sim.symbols import CALL_NAMES

        if call not in CALL_NAMES:
            from nvlib.sim.errors import ProfileError

            raise ProfileError("call", call, "not an NVML function the simulator answers")
        if seconds is not None and not seconds >= 0:
            raise ValueError(f"hang seconds must be a duration or None, not {seconds!r}")
        if gpu is not None:
            self._gpu(gpu)
        with self._state.cond:
            self._state.faults.hangs.append(
                CallHang(call, gpu, math.inf if seconds is None else float(seconds))
            )

    def clear_faults(self) -> None:
        """Cancel scheduled faults, stop failing and hanging calls, bring lost GPUs back.

        Events already delivered stay queued: they happened.
        """
        with self._state.cond:
            self._state.faults.clear()
            self._state.cond.notify_all()


def activate(profile: str | Path | Profile, root: Path | None = None) -> Simulation:
    """Simulate `profile` (a built-in name, a YAML path or a Profile) beneath pynvml.

    The host tree goes to `root`, or to a temporary directory removed on deactivate;
    its driver root is written on first use of `driver_root` or `device_nodes`.
    """
    global _active
    resolved = profile if isinstance(profile, Profile) else load_profile(profile)
    with _lock:
        previous = _active
    if previous is not None:
        previous.deactivate()
    owns_root = root is None
    path = Path(_temporary_root() if root is None else root)
    try:
        if not owns_root:
            path.mkdir(parents=True, exist_ok=True)
        simulation = Simulation(resolved, path, owns_root)
    except BaseException:
        if owns_root:
            import shutil

            shutil.rmtree(path, ignore_errors=True)
        raise
    with _lock:
        simulation._install()
        _active = simulation
    return simulation


def _temporary_root() -> str:
    """A new private directory, in /dev/shm where writable: a tmpfs writes the entries of
    a host tree ten times faster than a disk-backed /tmp."""
    if not (os.path.isdir(_SHM) and os.access(_SHM, os.W_OK | os.X_OK)):
        return tempfile.mkdtemp(prefix="nvlib-sim-")
    while True:  # tempfile.mkdtemp, less the 0.1 ms its first name costs
        path = f"{_SHM}/nvlib-sim-{os.urandom(6).hex()}"
        try:
            os.mkdir(path, 0o700)
            return path
        except FileExistsError:
            continue


def active() -> Simulation | None:
    return _active


@atexit.register
def _deactivate_at_exit() -> None:
    # A command run with --nvml-mock may exit without deactivating: drop the temp tree.
    current = _active
    if current is not None:
        current.deactivate()


class _Library:
    """What pynvml holds as nvmlLib: each C symbol it looks up, from the SimulatedLibrary
    built on the first lookup (the NVML state and every ctypes callback with it)."""

    def __init__(self, simulation: Simulation) -> None:
        self._simulation = simulation

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        fn = getattr(self._simulation._simulated_library(), name)
        self.__dict__[name] = fn  # the same object each time: pynvml may set its restype
        return fn
