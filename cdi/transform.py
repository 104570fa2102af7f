"""Root transforms: move a spec's paths from one root to another (`transform root`).

A spec generated inside a container names the driver under the container's view of it
(`/run/nvidia/driver/...`); the engine on the host needs host paths, and the reverse
also happens. `transform_root` rewrites one side of each edit, as `nvidia-ctk cdi
transform root` does (docs/cdi.md#transform-root), and is pure: same spec and roots,
same result.

Which side moves, by `relative_to`:

- `host`: device-node `hostPath` (an empty one stands for `path`, so it is filled in
  first), mount `hostPath`, the `path` of every hook but `startContainer` (which runs in
  the container's namespace), and the args of hooks that run on the host, i.e. all but
  `createContainer` and `startContainer`.
- `container`: device-node `path`, mount `containerPath`, the `path` of `startContainer`
  hooks, and the args of `createContainer` and `startContainer` hooks.

An arg `a::b` (`create-symlinks --link target::link`) has both sides moved. Env, names,
annotations and everything else are kept, the spec is not simplified, and equal roots
change nothing at all.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence

from cdi.spec import ContainerEdits, DeviceNode, Hook, Mount, Spec
from cdi.version import minimum_version, parse_version

__all__ = ["RELATIVE_TO", "change_root", "clean_root", "name_host_roots", "transform_root"]

RELATIVE_TO = ("host", "container")
# Hooks the runtime runs in the container's namespace: their args name container paths.
_IN_CONTAINER = frozenset({"createContainer", "startContainer"})


def _clean(path: str) -> str:
    """Go's `filepath.Clean` for an absolute path (normpath keeps a leading `//`)."""
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def clean_root(root: str) -> str:
    """A root as matched: `""` is `/` (see `change_root`), no trailing slash, cleaned."""
    return _clean(root) if root else "/"


def change_root(path: str, root: str, target: str) -> str:
    """`path` moved from `root` to `target` if it lies under `root`, else unchanged.

    Only a whole path component matches: root `/driver` moves `/driver` and
    `/driver/lib`, never `/driver-backup` (toolkit v1.20's boundary fix). Both roots are
    taken as `clean_root` gives them. An empty root means `/`: upstream's empty `--to`
    meant `/` until the boundary fix made it yield relative paths, which no engine can
    use. A moved path is cleaned, as upstream's `filepath.Join` does; relative paths
    (`nvidia-cdi-hook`, `libcuda.so.1`) never lie under an absolute root.
    """
    if root == "/":
        if not path.startswith("/"):
            return path
        rest = path
    elif path == root:
        return target
    elif path.startswith(root + "/"):
        rest = path[len(root) :]
    else:
        return path
    return _clean(target + rest)


def _move_arg(arg: str, root: str, target: str) -> str:
    """One hook arg; `a::b` moves both sides (only the first `::` splits, as upstream)."""
    left, sep, right = arg.partition("::")
    if not sep:
        return change_root(arg, root, target)
    return f"{change_root(left, root, target)}::{change_root(right, root, target)}"


def _node(node: DeviceNode, root: str, target: str, host: bool) -> DeviceNode:
    if host:
        moved = change_root(node.host_path or node.path, root, target)
        # An empty hostPath means "same as path"; spelling it out when nothing moved would
        # only raise the version (0.5.0) without changing what the engine does.
        if moved == (node.host_path or node.path):
            return node
        return node._replace(host_path=moved)
    moved = change_root(node.path, root, target)
    if moved == node.path:
        return node
    # The host side stays where it was: an empty hostPath followed `path`, so keep the old
    # one explicitly, or moving the container path would silently move the host node too.
    return node._replace(path=moved, host_path=node.host_path or node.path)


def _hook(hook: Hook, root: str, target: str, host: bool) -> Hook:
    in_container = hook.hook_name in _IN_CONTAINER
    moves_path = (hook.hook_name != "startContainer") == host
    path = change_root(hook.path, root, target) if moves_path else hook.path
    # Host-side hooks take host paths as args; container-side hooks container paths.
    args = (
        tuple(_move_arg(a, root, target) for a in hook.args) if in_container != host else hook.args
    )
    if path == hook.path and args == hook.args:
        return hook
    return hook._replace(path=path, args=args)


def _mount(mount: Mount, root: str, target: str, host: bool) -> Mount:
    if host:
        moved = change_root(mount.host_path, root, target)
        return mount if moved == mount.host_path else mount._replace(host_path=moved)
    moved = change_root(mount.container_path, root, target)
    return mount if moved == mount.container_path else mount._replace(container_path=moved)


def _edits(edits: ContainerEdits, root: str, target: str, host: bool) -> ContainerEdits:
    if not (edits.device_nodes or edits.hooks or edits.mounts):
        return edits
    return edits._replace(
        device_nodes=tuple(_node(n, root, target, host) for n in edits.device_nodes),
        hooks=tuple(_hook(h, root, target, host) for h in edits.hooks),
        mounts=tuple(_mount(m, root, target, host) for m in edits.mounts),
    )


def transform_root(spec: Spec, from_: str, to: str, relative_to: str = "host") -> Spec:
    """`spec` with the paths on the `relative_to` side moved from root `from_` to `to`.

    `cdiVersion` is kept, unless the moved content needs a higher one (a device node
    that gains a `hostPath` in a spec older than 0.5.0): then it is raised to the lowest
    the content allows, since no consumer that reads the old version reads the new key.
    Raises ValueError for a `relative_to` other than `host` or `container`.
    """
    if relative_to not in RELATIVE_TO:
        raise ValueError(f"invalid relative_to {relative_to!r}: want host or container")
    root, target = clean_root(from_), clean_root(to)
    if root == target:
        return spec
    host = relative_to == "host"
    moved = spec._replace(
        container_edits=_edits(spec.container_edits, root, target, host),
        devices=tuple(
            d._replace(container_edits=_edits(d.container_edits, root, target, host))
            for d in spec.devices
        ),
    )
    needed = minimum_version(moved)
    declared, lowest = parse_version(spec.version), parse_version(needed)
    if declared is not None and lowest is not None and lowest > declared:
        return moved._replace(version=needed)
    return moved


def name_host_roots(spec: Spec, moves: Sequence[tuple[str, str]]) -> Spec:
    """A spec generated from roots mounted in a container, naming the host's roots.

    `moves` are (root as this process reads it, the same root on the host) pairs, such
    as the driver root mounted at `/driver-root` and found at `/` on the host. The
    deepest root moves first, so a dev root inside the driver root keeps its own target.
    The result reads as if generated on the host: a `hostPath` equal to its `path` is
    left out, and `cdiVersion` is the lowest the content allows.
    """
    for root, target in sorted(moves, key=lambda m: -len(clean_root(m[0]))):
        spec = transform_root(spec, root, target, "host")
    spec = spec._replace(
        container_edits=_without_same_host_paths(spec.container_edits),
        devices=tuple(
            d._replace(container_edits=_without_same_host_paths(d.container_edits))
            for d in spec.devices
        ),
    )
    return spec._replace(version=minimum_version(spec))


def _without_same_host_paths(edits: ContainerEdits) -> ContainerEdits:
    nodes = tuple(
        n._replace(host_path="") if n.host_path == n.path else n for n in edits.device_nodes
    )
    return edits if nodes == edits.device_nodes else edits._replace(device_nodes=nodes)
