"""The toolkit's locators (`pkg/lookup`), over one cached view of the file system.

Each locator answers "where under this root is `pattern`?" the way `nvidia-ctk` does, so
the same driver root yields the same files in the same order:

- file: glob `<root>/<search path>/<pattern>` per search path, each directory's matches
  sorted (Go's `filepath.Glob`), kept if the filter accepts them, optionally the first N;
- symlink: the file locator's matches with their symlinks resolved, de-duplicated;
- library: `--library-search-path` alone if given, else the standard directories, else
  `<root>/etc/ld.so.cache` (64-bit entries);
- executable: the generator's `$PATH` then the standard bin directories, first match.

One generate pass globs the same few directories many times, so `Fs` caches each
directory listing and `stat` for the pass: a realistic driver root is walked once. The
listing is a `scandir`, whose entry types (link, directory, other) answer "exists?",
"is it a symlink?" and most "is it a file?" questions without one `lstat` a path.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import stat
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache

from cdi._ldcache import LdCacheError, parse_ld_cache

log = logging.getLogger(__name__)

__all__ = [
    "LIBRARY_DIRS",
    "Fs",
    "bin_dirs",
    "in_root",
    "matches",
    "relative_to_root",
]

# The library locator's standard directories, in its order.
LIBRARY_DIRS: tuple[str, ...] = (
    "/",
    "/usr/lib64",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu/nvidia/current",
    "/usr/lib/aarch64-linux-gnu/nvidia/current",
    "/lib64",
    "/lib/x86_64-linux-gnu",
    "/lib/aarch64-linux-gnu",
    "/lib/x86_64-linux-gnu/nvidia/current",
    "/lib/aarch64-linux-gnu/nvidia/current",
)
_STANDARD_BIN_DIRS = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")
_MAGIC = frozenset("*?[")


def matches(name: str, pattern: str) -> bool:
    """`fnmatch.fnmatchcase(name, pattern)`, without a regex for a `*`-only pattern.

    fnmatch compiles each new pattern into a regex, ~0.1 ms a pattern; one generate pass
    matches some fifteen distinct patterns once each, nearly all of them literal text
    and `*` (`libcuda.so.*.*`, `lib*.so.550.54.15`), which need no regex: the name
    starts with the first piece, ends with the last, and holds the others in order.
    `*` matches any text, `/` included, as in fnmatch. `?` and `[...]` go to fnmatch.
    """
    if "?" in pattern or "[" in pattern:
        return fnmatch.fnmatchcase(name, pattern)
    parts = pattern.split("*")
    if len(parts) == 1:
        return name == pattern
    first, last = parts[0], parts[-1]
    end = len(name) - len(last)
    if end < len(first) or not name.startswith(first) or not name.endswith(last):
        return False
    pos = len(first)
    for part in parts[1:-1]:
        pos = name.find(part, pos, end)
        if pos < 0:
            return False
        pos += len(part)
    return True


@lru_cache(maxsize=1024)  # a pass joins the same roots and search paths hundreds of times
def in_root(root: str, path: str) -> str:
    """Go's `filepath.Join(root, path)`: `path` is inside `root` even when absolute."""
    return os.path.normpath(os.path.join(root, path.lstrip("/")))


def _filter(names: Iterable[str], pattern: str) -> list[str]:
    """The names `pattern` matches, as `matches` decides, in their order.

    One loop over the listing per glob rather than a call per name: the first and last
    pieces of a `*` pattern are tested inline, `matches` sees only the few that pass.
    """
    if "?" in pattern or "[" in pattern:
        return [name for name in names if fnmatch.fnmatchcase(name, pattern)]
    parts = pattern.split("*")
    if len(parts) == 1:
        return [name for name in names if name == pattern]
    first, last = parts[0], parts[-1]
    shortest = len(first) + len(last)
    found = [
        name
        for name in names
        if name.startswith(first) and name.endswith(last) and len(name) >= shortest
    ]
    return found if len(parts) == 2 else [name for name in found if matches(name, pattern)]


def relative_to_root(root: str, path: str) -> str:
    """The container path of a host path: the root prefix removed, on a path boundary.

    (The toolkit trims the prefix as a string; `/driver` would wrongly match
    `/driver-backup/...` until its v1.20 boundary fix.)
    """
    if root in ("", "/"):
        return path
    if path == root:
        return "/"
    if path.startswith(root + "/"):
        return path[len(root) :]
    return path


def bin_dirs(environ_path: str | None = None) -> list[str]:
    """`$PATH` then the standard bin directories, duplicates removed (executable locator)."""
    path = os.environ.get("PATH", "") if environ_path is None else environ_path
    dirs: list[str] = []
    for d in (*path.split(":"), *_STANDARD_BIN_DIRS):
        if d and d not in dirs:
            dirs.append(d)
    return dirs


@lru_cache(maxsize=256)  # a pass locates some 40 patterns in the same few directory lists
def _prefixes(root: str, search_paths: tuple[str, ...]) -> tuple[str, ...]:
    """`<root>/<search path>` for each search path (the root alone if none), once each."""
    return tuple(dict.fromkeys(in_root(root, search) for search in search_paths or ("",)))


def _split(path: str) -> tuple[str, str]:
    """`os.path.split`, at a third of its cost for the usual `/a/b` path."""
    head, _, name = path.rpartition("/")
    if not head or head.endswith("/"):  # "/b", "b", "a//b": the full rules
        return os.path.split(path)
    return head, name


def _has_magic(pattern: str) -> bool:
    return not _MAGIC.isdisjoint(pattern)


# What a directory listing says about an entry, without following a symlink.
_LINK, _DIR, _OTHER = "link", "dir", "other"


def _entry_kinds(directory: str) -> dict[str, str]:
    """{name: _LINK | _DIR | _OTHER}: the d_type of each entry, so no lstat on most
    file systems (`DirEntry` falls back to one where the type is unknown)."""
    kinds = {}
    with os.scandir(directory) as entries:
        for entry in entries:
            if entry.is_symlink():
                kinds[entry.name] = _LINK
            elif entry.is_dir(follow_symlinks=False):
                kinds[entry.name] = _DIR
            else:
                kinds[entry.name] = _OTHER
    return kinds


class Fs:
    """Cached directory listings and stats for one pass over a driver root."""

    def __init__(self) -> None:
        # directory -> {name: _LINK | _DIR | _OTHER}; None when it exists but cannot be
        # listed (no read permission), so its entries are asked about one by one.
        self._entries: dict[str, dict[str, str] | None] = {}
        self._listings: dict[str, tuple[str, ...]] = {}
        self._stats: dict[str, os.stat_result | None] = {}
        self._ld_caches: dict[str, list[str]] = {}
        self._real_dirs: dict[str, str] = {}
        self._real_paths: dict[str, str] = {}

    def _scan(self, directory: str) -> dict[str, str] | None:
        """The kinds of `directory`'s entries, one `scandir` a pass; {} when missing."""
        if directory in self._entries:
            return self._entries[directory]
        kinds: dict[str, str] | None
        try:
            kinds = _entry_kinds(directory)
        except (FileNotFoundError, NotADirectoryError):
            kinds = {}
        except OSError:
            kinds = None
        self._entries[directory] = kinds
        return kinds

    def _kind(self, path: str) -> str | None:
        """`_LINK`, `_DIR` or `_OTHER` from the parent's listing; "" when `path` does not
        exist; None when the listing cannot say (unreadable parent, `.` or `..`)."""
        directory, name = _split(path)
        if name in ("", ".", ".."):
            return None
        kinds = self._scan(directory)
        return None if kinds is None else kinds.get(name, "")

    def listdir(self, directory: str) -> tuple[str, ...]:
        """The sorted entry names; () when `directory` cannot be listed."""
        names = self._listings.get(directory)
        if names is None:
            names = self._listings[directory] = tuple(sorted(self._scan(directory) or ()))
        return names

    def lexists(self, path: str) -> bool:
        """`os.path.lexists`, answered from the parent's listing."""
        kind = self._kind(path)
        return os.path.lexists(path) if kind is None else kind != ""

    def is_link(self, path: str) -> bool:
        """`os.path.islink`, answered from the parent's listing."""
        kind = self._kind(path)
        return os.path.islink(path) if kind is None else kind == _LINK

    def stat(self, path: str) -> os.stat_result | None:
        """`os.stat` (symlinks followed), None when missing; cached."""
        if path in self._stats:
            return self._stats[path]
        try:
            result: os.stat_result | None = os.stat(path)
        except OSError:
            result = None
        self._stats[path] = result
        return result

    def realpath(self, path: str) -> str:
        """`os.path.realpath`, once a path and with each directory resolved once a pass
        (the same libraries are resolved for the library dirs, then for the mounts)."""
        real = self._real_paths.get(path)
        if real is None:
            real = self._real_paths[path] = self._resolve(path)
        return real

    def _resolve(self, path: str) -> str:
        directory, name = _split(path)
        real_dir = self._real_dirs.get(directory)
        if real_dir is None:
            real_dir = self._real_dirs[directory] = os.path.realpath(directory)
        candidate = os.path.join(real_dir, name)
        # `directory` and `real_dir` are one directory: its listing says what `name` is.
        if self._kind(path) in (_DIR, _OTHER):
            return candidate
        return os.path.realpath(candidate)

    def glob(self, pattern: str) -> list[str]:
        """Go's `filepath.Glob`: matches sorted per directory; no magic means "exists?"."""
        if not _has_magic(pattern):
            return [pattern] if self.lexists(pattern) else []
        directory, name = _split(pattern)
        parents = self.glob(directory) if _has_magic(directory) else [directory]
        found = []
        for parent in parents:
            found += [os.path.join(parent, entry) for entry in _filter(self.listdir(parent), name)]
        return found

    # --- filters (the toolkit's assertFile / assertExecutable / assertCharDevice) ---

    def is_file(self, path: str) -> bool:
        """Anything but a directory, symlinks followed (the toolkit's assertFile)."""
        kind = self._kind(path)
        if kind in ("", _DIR, _OTHER):  # missing or not a link: the listing is the answer
            return kind == _OTHER
        st = self.stat(path)  # a symlink to follow, or a parent that cannot be listed
        return st is not None and not stat.S_ISDIR(st.st_mode)

    def is_executable(self, path: str) -> bool:
        st = self.stat(path)
        return st is not None and not stat.S_ISDIR(st.st_mode) and bool(st.st_mode & 0o111)

    # --- locators ---

    def locate(
        self,
        root: str,
        search_paths: Sequence[str],
        pattern: str,
        accept: Callable[[str], bool] | None = None,
        count: int = 0,
    ) -> list[str]:
        """The file locator: every match of `pattern` under each `<root>/<search path>`."""
        accept = accept or self.is_file
        found: list[str] = []
        for prefix in _prefixes(root, tuple(search_paths)):
            for candidate in self.glob(in_root(prefix, pattern)):
                if accept(candidate):
                    found.append(candidate)
                    if count and len(found) == count:
                        return found
        return found

    def locate_resolved(self, root: str, search_paths: Sequence[str], pattern: str) -> list[str]:
        """The symlink locator: matches with symlinks resolved, first occurrence kept."""
        return _unique(self.realpath(p) for p in self.locate(root, search_paths, pattern))

    def locate_library(
        self, root: str, pattern: str, search_paths: Sequence[str] = ()
    ) -> list[str]:
        """The library locator: host paths, symlinks resolved."""
        if search_paths:
            # Explicit search paths are host paths: the root does not apply to them.
            return self.locate_resolved("/", search_paths, pattern)
        found = self.locate_resolved(root, LIBRARY_DIRS, pattern)
        return found or self._locate_in_ld_cache(root, pattern)

    def _locate_in_ld_cache(self, root: str, pattern: str) -> list[str]:
        libraries = self._ld_cache(root)
        if "/" in pattern:
            full = in_root(root, pattern)
            hits = (lib for lib in libraries if matches(lib, full))
        else:
            hits = (lib for lib in libraries if matches(os.path.basename(lib), pattern))
        return _unique(os.path.realpath(lib) for lib in hits if os.path.exists(lib))

    def _ld_cache(self, root: str) -> list[str]:
        """64-bit entries of `<root>/etc/ld.so.cache`, each with its symlink chain."""
        if root in self._ld_caches:
            return self._ld_caches[root]
        path = in_root(root, "/etc/ld.so.cache")
        libraries: list[str] = []
        try:
            with open(path, "rb") as f:
                _libs32, libs64 = parse_ld_cache(f.read())
        except (OSError, LdCacheError) as err:
            log.debug("no usable ld cache at %s: %s", path, err)
            libs64 = []
        for library in libs64:
            libraries.extend(_symlink_chain(in_root(root, library)))
        self._ld_caches[root] = libraries
        return libraries

    def locate_executable(self, root: str, name: str, dirs: Sequence[str]) -> str | None:
        found = self.locate(root, dirs, name, accept=self.is_executable, count=1)
        return found[0] if found else None


def _symlink_chain(path: str) -> list[str]:
    """The path and every link target on the way to a non-link (toolkit ResolveChain)."""
    chain: list[str] = []
    current = path
    while current not in chain:
        try:
            is_link = stat.S_ISLNK(os.lstat(current).st_mode)
        except OSError:
            break  # a cache entry whose file is gone: skipped, as the toolkit warns and skips
        chain.append(current)
        if not is_link:
            break
        target = os.readlink(current)
        current = os.path.normpath(os.path.join(os.path.dirname(current), target))
    return chain


def _unique(paths: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(paths))
