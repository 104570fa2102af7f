"""The plugin's CDI spec: make sure every name it hands out is defined.

docs/deviceplugin.md#allocate and docs/cdi.md#beside-the-device-plugins-spec-file say
how it shares a spec directory with `nvidia-cdi generate`.

With a `cdi-*` strategy the plugin answers Allocate with names such as
`nvidia.com/gpu=GPU-...`. A generator (`nvidia-cdi generate`, usually a DaemonSet)
normally defines them in `nvidia.yaml`; the plugin checks the spec directories
(`/etc/cdi`, then `--cdi-spec-dir`, the later winning as in CDI) at start and whenever
their files change, and writes the names nobody defines, and only those, to its own
`<cdi-spec-dir>/nvidia-device-plugin.yaml` with the `cdi` package: one generator, two
callers. It never touches another file, never defines a name a file of its directory
already defines (CDI drops a device defined twice in one directory), removes its file
when nothing is missing, and rewrites it only when the set of missing names changes.
A failed generation is logged; Allocate answers regardless. A write that fails (a full
or read-only directory) names the file and the errno, leaves the last file whole, and
is tried again about every second until it lands.

A name never moves between our file and the generator's (`cdi.owners`): no two steps
can move it without a moment where it is defined twice or not at all. We decide and
write under the spec directory's lock, and the generator, under the same lock, leaves
out whatever our file defines; so whoever defined a name first keeps it.

Reading, generating and writing specs is the `cdi` package's public API
(`load_specs`, `feature_options`, `generate_spec`, `select_devices`, `write_spec`);
this module only decides which names are missing, imported lazily so that a plugin
without a CDI strategy never loads it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from cdi.owners import PLUGIN_SPEC_FILE
from deviceplugin.metrics import NO_METRICS, PluginMetrics
from deviceplugin.watch import DirectorySignature, directory_signature
from nvlib import fsutil
from nvlib.model import Machine
from nvlib.record import Plain

log = logging.getLogger(__name__)

OWN_FILE = PLUGIN_SPEC_FILE
# At most this long the control loop waits for a generator's write (milliseconds) to end.
LOCK_SECONDS = 0.5
STATIC_DIR = "etc/cdi"  # under the host root: /etc/cdi, or the simulator's
SPEC_SUFFIXES = (".json", ".yaml")  # what CDI reads; `.yml` is ignored


def defined_names(spec_dirs: Sequence[Path], skip: Path) -> tuple[set[str], set[str]]:
    """(names resolvable without `skip`, names other files of `skip`'s directory define).

    `cdi.load_specs` reads the files and reports what defines each name; the resolution
    is redone here without the plugin's own file, since that file must not count as
    "defined elsewhere". CDI's rules: the later directory wins, and a name defined by two
    files of one directory is dropped, whatever a later directory says.
    """
    from cdi import load_specs

    registry = load_specs([str(d) for d in spec_dirs])
    per_dir: dict[int, dict[str, int]] = {}
    for entry in registry.files:
        if entry.spec is None or Path(entry.path) == skip:
            continue
        counts = per_dir.setdefault(entry.priority, {})
        for device in entry.spec.devices:
            name = f"{entry.spec.kind}={device.name}"
            counts[name] = counts.get(name, 0) + 1
    clashing = {n for counts in per_dir.values() for n, c in counts.items() if c > 1}
    usable = {n for counts in per_dir.values() for n in counts} - clashing
    own_priority = next((i for i, d in enumerate(spec_dirs) if d == skip.parent), None)
    in_own_dir = set(per_dir.get(own_priority, {})) if own_priority is not None else set()
    return usable, in_own_dir


class CdiKeeper(Plain):
    """Keeps `<cdi-spec-dir>/nvidia-device-plugin.yaml` holding exactly the missing names."""

    spec_dirs: tuple[Path, ...]  # lowest precedence first
    own_path: Path
    needed: tuple[str, ...]  # the qualified names Allocate hands out
    generate: Callable[[frozenset[str]], bytes]  # our file's bytes for these names
    identity: object = None  # what the names and bytes depend on: equal means reusable
    metrics: PluginMetrics = NO_METRICS

    def __post_init__(self) -> None:
        # not fields: what the checks found, left out of the repr
        self._missing: frozenset[str] | None = None
        self._signature: DirectorySignature | None = None  # None: never checked
        self._skipped: str | None = None  # why the last check was skipped
        # A write (bytes) or removal (None) that failed, retried at each recheck.
        self._unwritten: tuple[frozenset[str], bytes | None] | None = None
        self._error: str | None = None  # the last failure logged

    def check(self) -> None:
        """Compare what the directories define with what is needed; write only on change.

        Decided and written under the lock of our directory, which the generator takes
        for its own write (`cdi.owners`): neither decides on what the other is replacing.
        A lock held too long, or a directory we cannot open, skips this check; the next
        tick tries again.
        """
        from cdi.owners import spec_dir_lock

        try:
            self.own_path.parent.mkdir(parents=True, exist_ok=True)
            with spec_dir_lock(self.own_path.parent, LOCK_SECONDS):
                self._check_locked()
        except OSError as err:
            if str(err) != self._skipped:  # once per reason, not once a second
                log.warning("CDI spec check of %s skipped: %s", self.own_path.parent, err)
            self._skipped = str(err)
            self._signature = None  # the next tick checks again
        else:
            self._skipped = None

    def _check_locked(self) -> None:
        self._signature = directory_signature(self.spec_dirs, SPEC_SUFFIXES)
        self.metrics.cdi_check()
        usable, in_own_dir = defined_names(self.spec_dirs, self.own_path)
        missing = frozenset(n for n in self.needed if n not in usable)
        clash = sorted(missing & in_own_dir)
        if clash:
            log.warning(
                "CDI devices defined more than once in %s, so unusable: %s",
                self.own_path.parent,
                ", ".join(clash),
            )
        missing -= in_own_dir  # never a second definition in one directory
        exists = self.own_path.exists()
        if missing == self._missing and exists == bool(missing):
            return
        self._missing, self._unwritten = missing, None
        if not missing:
            if exists:
                log.info("Every CDI device is defined elsewhere: removing %s", self.own_path)
                self._put(missing, None)
            return
        try:
            data = self.generate(missing)
        except Exception as err:  # logged, never fatal: Allocate still answers
            log.error("Failed to write the CDI spec %s: %s", self.own_path, err)
            self._missing = None  # try again at the next change
            self.metrics.cdi_write("failed")
            return
        self._put(missing, data)

    def _put(self, missing: frozenset[str], data: bytes | None) -> None:
        """Write `data` to our file (None: remove it). A failure (a full or read-only
        directory) keeps the last file whole, is logged once per distinct error, and is
        tried again at every recheck, about every second, until the directory takes it."""
        try:
            if data is None:
                fsutil.remove_regular_file(self.own_path)
            else:
                self.own_path.parent.mkdir(parents=True, exist_ok=True)
                fsutil.write_atomic(self.own_path, data)
        except OSError as err:
            self.metrics.cdi_write("failed")
            if str(err) != self._error:
                log.error(
                    "Failed to write the CDI spec %s, keeping the last one and trying again: %s",
                    self.own_path,
                    err,
                )
            self._error = str(err)
            self._missing, self._unwritten = None, (missing, data)
            return
        if self._error is not None:
            log.info("The CDI spec %s takes writes again", self.own_path)
        self._missing, self._unwritten, self._error = missing, None, None
        if data is None:
            self.metrics.cdi_write("removed")
        else:
            self.metrics.cdi_write("written")
            log.info("Wrote %d CDI devices to %s", len(missing), self.own_path)

    def changed(self) -> bool:
        """Never checked yet, or a spec file appeared, went, or changed size or mtime."""
        return (
            self._signature is None
            or directory_signature(self.spec_dirs, SPEC_SUFFIXES) != self._signature
        )

    def recheck_if_changed(self) -> None:
        """Check again if the directories changed or a write failed: a whole check, under
        the directory lock, so a retried write decides on what the directory holds now."""
        if self.changed() or self._unwritten is not None:
            self.check()


def spec_dirs(host_root: Path, cdi_spec_dir: str) -> tuple[Path, ...]:
    """`/etc/cdi` (under the host root) then `--cdi-spec-dir`: the later one wins."""
    static = host_root / STATIC_DIR
    own = Path(cdi_spec_dir)
    return (static, own) if static != own else (own,)


class GenerateInput(NamedTuple):
    """What the generator needs besides the names: the plugin's own roots and options."""

    machine: Machine
    driver_root: str
    dev_root: str
    host_root: str
    hook_path: str
    id_strategy: str  # the one naming strategy the plugin hands out
    full_gpus_for_mig_enabled: bool  # mig-strategy none advertises MIG-enabled GPUs whole
    disabled_hooks: tuple[str, ...] = ()
    feature_flags: tuple[str, ...] = ()
    placeholder_nodes: Mapping[str, tuple[int, int]] | None = None  # the simulator's
    # (root as read here, the same root on the host): the driver mounted in the container
    moves: tuple[tuple[str, str], ...] = ()


def generate_missing(source: GenerateInput, missing: frozenset[str]) -> bytes:
    """Our file: the `cdi` generator's spec cut down to the missing devices, as YAML."""
    import cdi

    features = cdi.feature_options(source.feature_flags)
    files = cdi.find_driver_files(
        source.machine,
        source.driver_root,
        source.dev_root,
        host_root=source.host_root,
        placeholder_nodes=source.placeholder_nodes,
        explicit_libraries=features.explicit_libraries,
        ipc_sockets=features.ipc_sockets,
    )
    options = cdi.GenerateOptions(
        device_name_strategies=(source.id_strategy,),
        hook_path=source.hook_path,
        disabled_hooks=frozenset(source.disabled_hooks),
        no_all_device=True,  # the plugin never hands out `all`
        no_additional_gids=features.no_additional_gids,
        full_gpus_for_mig_enabled=source.full_gpus_for_mig_enabled,
    )
    spec = cdi.generate_spec(source.machine, files, options)
    if source.moves:
        spec = cdi.name_host_roots(spec, source.moves)
    names = [cdi.parse_qualified_name(n)[2] for n in sorted(missing)]
    return cdi.spec_bytes(cdi.select_devices(spec, names), "yaml")


def mounted_roots(
    driver_root: str, dev_root: str, container_driver_root: str
) -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """(driver root to read, dev root to read, moves): upstream's root transform.

    With the host's driver root mounted at `--driver-root-ctr-path` (a directory in this
    container), files are read there and the spec names `driver_root`; device nodes
    are read under the mount's `dev` when it has one, else under `/`, and named under
    `dev_root`. Without the mount (the default `/` with an injecting runtime) the roots
    are read as given.
    """
    ctr = container_driver_root.rstrip("/")
    if not ctr or not os.path.isdir(ctr):
        return driver_root, dev_root, ()
    read_dev = ctr if os.path.isdir(os.path.join(ctr, "dev")) else "/"
    moves = (
        (ctr, driver_root),
        (os.path.join(read_dev, "dev"), os.path.join(dev_root, "dev")),
    )
    return ctr, read_dev, moves
