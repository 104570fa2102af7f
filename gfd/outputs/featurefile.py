"""The NFD feature file and standard output (docs/labels-output.md#the-feature-file).

Imported by `gpu-feature-discovery --oneshot` in file mode, whose start-up is
benchmarked against an interpreter that loads only pynvml (bench/run.py): only the
standard library, `nvlib.fsutil` and the metrics recorder's no-op face (`gfd.metrics`)
here, no yaml and no kubernetes.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import sys
import time
from collections.abc import Callable, Mapping

from gfd.metrics import NO_METRICS, GfdMetrics
from gfd.outputs import OutputError, OutputKind
from nvlib.fsutil import remove_regular_file, write_atomic

__all__ = ["STDOUT", "FeatureFile", "expiry_directive", "format_labels", "removal_applies"]

log = logging.getLogger(__name__)

# `-` is the project's name for standard output; `""` is upstream's.
STDOUT = "-"
_STDOUT_NAMES = ("", STDOUT)

# nfd-worker skips a larger feature file entirely.
NFD_MAX_FILE_SIZE = 65536
# No space, or no quota, left on the filesystem of the feature file.
_FULL = (errno.ENOSPC, errno.EDQUOT)


def format_labels(labels: Mapping[str, str], expires_at: float | None = None) -> bytes:
    """`key=value\\n` per label, sorted by key in byte order; `key=` when empty.

    Upstream's line order follows a Go map (undefined); sorted lines keep the file, its
    diffs and golden tests quiet. With `expires_at` (Unix seconds) NFD's expiry
    directive comes first, so that it covers every label of the file.
    """
    keys = sorted(labels, key=lambda k: k.encode())
    head = expiry_directive(expires_at) if expires_at is not None else ""
    return (head + "".join(f"{k}={labels[k]}\n" for k in keys)).encode()


def expiry_directive(expires_at: float) -> str:
    """`# +expiry-time=<RFC 3339, UTC>`: nfd-worker (v0.15 and later) ignores the lines
    after it once that time has passed. Whole seconds, rounded up."""
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(-(-expires_at // 1)))
    return f"# +expiry-time={stamp}\n"


def removal_applies(
    *,
    use_node_feature_api: bool,
    oneshot: bool,
    sleep_infinite: bool,
    output_file: str,
) -> bool:
    """Whether the feature file is removed on exit, as upstream decides it.

    `use_node_feature_api` is the resolved value (`auto` already decided).
    Standard output is never removed; that the path is a regular file is
    checked at removal time.
    """
    return (
        not use_node_feature_api
        and not oneshot
        and not sleep_infinite
        and output_file not in _STDOUT_NAMES
    )


class FeatureFile:
    """Writes labels to an NFD feature file, or to standard output for `-`/`""`."""

    def __init__(
        self,
        path: str,
        *,
        remove_on_cleanup: bool = True,
        expiry_seconds: float | None = None,
        clock: Callable[[], float] = time.time,
        metrics: GfdMetrics = NO_METRICS,
    ) -> None:
        """`remove_on_cleanup`: the caller's `removal_applies(...)` answer, for a caller
        that always calls cleanup(); one that calls it only when removal applies
        can leave the default.

        `expiry_seconds` (`--label-expiry` K x the sleep interval): every write carries
        NFD's expiry directive that far ahead of `clock()`. The directive moves with
        every pass, so with it every pass rewrites the file, changed labels or not.
        """
        self.path = path
        self.remove_on_cleanup = remove_on_cleanup
        self.expiry_seconds = expiry_seconds
        self.clock = clock
        self.metrics = metrics

    @property
    def to_stdout(self) -> bool:
        return self.path in _STDOUT_NAMES

    @property
    def kind(self) -> OutputKind:
        return "stdout" if self.to_stdout else "file"

    def write(self, labels: Mapping[str, str]) -> None:
        expires_at = None
        if self.expiry_seconds is not None:
            expires_at = self.clock() + self.expiry_seconds
        data = format_labels(labels, expires_at)
        if self.to_stdout:
            try:
                self._write_stdout(data)
            except OutputError:
                self.metrics.output_write("stdout", ok=False)
                raise
            self.metrics.output_write("stdout", ok=True)
            return
        if len(data) > NFD_MAX_FILE_SIZE:
            log.warning(
                "Output file %s is %d bytes; NFD ignores feature files over %d bytes",
                self.path,
                len(data),
                NFD_MAX_FILE_SIZE,
            )
        log.info("Writing labels to output file %s", self.path)
        try:
            changed = write_atomic(self.path, data)
        except OSError as err:
            self.metrics.output_write("file", ok=False)
            # A full filesystem heals (logs rotate, someone frees space) and is no fault
            # of the deployment: waited out like an API outage, the file keeping the last
            # labels whole. A read-only or forbidden directory is the deployment's.
            raise OutputError(
                f"error atomically writing file '{self.path}': {err}",
                retryable=err.errno in _FULL,
            ) from err
        if changed:
            self.metrics.output_write("file", ok=True)

    def withdraw(self) -> None:
        """Remove the file because a NodeFeature object now carries the labels.

        Only a regular file (never `/dev/null` or a FIFO); standard output has no copy.
        """
        if self.to_stdout:
            return
        try:
            removed = remove_regular_file(self.path)
        except OSError as err:
            self.metrics.output_write("file_remove", ok=False)
            raise OutputError(f"error removing output file '{self.path}': {err}") from err
        if removed:
            self.metrics.output_write("file_remove", ok=True)
            log.info("Removed output file %s: the NodeFeature object carries the labels", self.path)

    def close(self) -> None:
        """Nothing to release: each write opens and closes the file."""

    def cleanup(self) -> None:
        """Remove `<dir>/gfd-tmp` (upstream's legacy temp dir), then the file.

        Only when removal applies, only a regular file (never `/dev/null` or a
        FIFO), and failures are warnings: the process is exiting anyway.
        """
        if not self.remove_on_cleanup or self.to_stdout:
            return
        if os.path.lexists(self.path) and not _is_regular(self.path):
            # `/dev/null`, a FIFO, a symlink: neither it nor its directory is ours.
            return
        legacy_tmp = os.path.join(os.path.dirname(self.path), "gfd-tmp")
        try:
            if os.path.isdir(legacy_tmp) and not os.path.islink(legacy_tmp):
                shutil.rmtree(legacy_tmp)
            remove_regular_file(self.path)
        except OSError as err:
            log.warning("Error removing output file: %s", err)

    @staticmethod
    def _write_stdout(data: bytes) -> None:
        # The exact bytes, whatever the locale's encoding, flushed at once so a
        # pipe reader sees each pass whole.
        out = sys.stdout
        try:
            out.flush()
            buffer = getattr(out, "buffer", None)
            if buffer is None:
                out.write(data.decode())
                out.flush()
            else:
                buffer.write(data)
                buffer.flush()
        except OSError as err:
            raise OutputError(f"error writing labels to standard output: {err}") from err


def _is_regular(path: str) -> bool:
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False
