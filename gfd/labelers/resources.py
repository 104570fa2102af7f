"""Resource labels: `nvidia.com/gpu.*` for full GPUs, then the MIG strategy's labels.

Full GPUs (with the deterministic pick on a node of several models:
docs/labels.md#the-gpus), sharing (docs/labels.md#sharing), MIG single / mixed / INVALID
(docs/labels.md#mig-strategies-and-profile-names).
"""

from __future__ import annotations

import logging
from collections import Counter

from gfd.labelers.values import product
from nvlib.config import Config
from nvlib.model import Gpu, Machine, MigDevice

log = logging.getLogger(__name__)

PREFIX = "nvidia.com/"
GPU_RESOURCE = "nvidia.com/gpu"
MIG_STRATEGIES = ("none", "single", "mixed")

_FAMILIES = {
    1: "tesla",
    2: "fermi",
    3: "kepler",
    5: "maxwell",
    6: "pascal",
    9: "hopper",
    10: "blackwell",
    12: "blackwell",
    13: "rubin",
}


class LabelError(RuntimeError):
    """A labeler cannot produce a truthful label set: the pass fails."""


def family(major: int, minor: int) -> str:
    if major == 7:
        return "volta" if minor < 5 else "turing"
    if major == 8:
        return "ampere" if minor < 9 else "ada-lovelace"
    return _FAMILIES.get(major, "undefined")


def architecture(resource: str, gpu: Gpu) -> dict[str, str]:
    if gpu.compute_major == 0:
        return {}
    return {
        f"{resource}.family": family(gpu.compute_major, gpu.compute_minor),
        f"{resource}.compute.major": str(gpu.compute_major),
        f"{resource}.compute.minor": str(gpu.compute_minor),
    }


def _sharing(config: Config, resource: str) -> tuple[int, str, bool]:
    """(replicas, sharing-strategy, shared-and-not-renamed) for one resource."""
    entry = config.sharing.replication_for(resource)
    replicas = entry.replicas if entry is not None and entry.replicas > 0 else 1
    strategy = config.sharing.sharing_strategy()
    if strategy == "none" or replicas <= 1:
        return replicas, "none", False
    return replicas, strategy, not (entry is not None and entry.rename)


def _resource_labels(
    resource: str,
    count: int,
    model: str,
    suffixes: tuple[str, ...],
    config: Config | None,
) -> dict[str, str]:
    """count / replicas / sharing-strategy / product; `config=None` labels without sharing."""
    if config is None:
        replicas, strategy, shared = 0, "none", False
    else:
        replicas, strategy, shared = _sharing(config, resource)
    return {
        f"{resource}.count": str(count),
        f"{resource}.replicas": str(replicas),
        f"{resource}.sharing-strategy": strategy,
        f"{resource}.product": product(f"{resource}.product", model, suffixes, shared),
    }


def _preference(gpus: tuple[Gpu, ...], counts: Counter[str]) -> list[str]:
    """Names, most preferred first: more devices, then the lower first NVML index."""
    first: dict[str, int] = {}
    for gpu in gpus:
        first.setdefault(gpu.name, gpu.index)
    return sorted(first, key=lambda name: (-counts[name], first[name]))


def full_gpu_labels(machine: Machine, config: Config) -> dict[str, str]:
    counts = Counter(gpu.name for gpu in machine.gpus)
    ranked = _preference(machine.gpus, counts)
    if len(ranked) > 1:
        log.warning("Multiple device types detected: %s", ranked)
    labels: dict[str, str] = {}
    for mig_group in (True, False):
        group = tuple(gpu for gpu in machine.gpus if gpu.mig_enabled == mig_group)
        names = [name for name in ranked if any(gpu.name == name for gpu in group)]
        for name in reversed(names):  # least preferred first: the group's winner writes last
            gpu = next(gpu for gpu in group if gpu.name == name)
            labels |= _resource_labels(
                GPU_RESOURCE, counts[name], name, (), None if mig_group else config
            )
            if gpu.memory_mib:
                labels[f"{GPU_RESOURCE}.memory"] = str(gpu.memory_mib)
            labels |= architecture(GPU_RESOURCE, gpu)
    return labels


def _mig_attributes(resource: str, mig: MigDevice) -> dict[str, str]:
    return {
        f"{resource}.memory": str(mig.memory_mib),
        f"{resource}.multiprocessors": str(mig.multiprocessors),
        f"{resource}.slices.gi": str(mig.gi_slices),
        f"{resource}.slices.ci": str(mig.ci_slices),
        f"{resource}.engines.copy": str(mig.copy_engines),
        f"{resource}.engines.decoder": str(mig.decoders),
        f"{resource}.engines.encoder": str(mig.encoders),
        f"{resource}.engines.jpeg": str(mig.jpegs),
        f"{resource}.engines.ofa": str(mig.ofas),
    }


def label_profile(profile: str) -> str:
    """`1g.10gb+me` -> `1g.10gb.me`: label keys and values carry no `+`."""
    return profile.replace("+", ".")


def _single_invalid_reason(machine: Machine) -> str | None:
    enabled = [gpu for gpu in machine.gpus if gpu.mig_enabled]
    if any(not gpu.mig_devices for gpu in enabled):
        return "at least one MIG device is enabled but empty"
    if len(enabled) != len(machine.gpus):
        return "devices with MIG enabled and disable detected"
    if len({mig.profile for _, mig in machine.mig_devices}) > 1:
        return "more than one MIG device type present on node"
    return None


def mig_single_labels(machine: Machine, config: Config) -> dict[str, str]:
    enabled = [gpu for gpu in machine.gpus if gpu.mig_enabled]
    if not enabled:
        return {}
    reason = _single_invalid_reason(machine)
    if reason is not None:
        log.warning("Invalid configuration detected for mig-strategy=single: %s", reason)
        return {
            f"{GPU_RESOURCE}.product": product(
                f"{GPU_RESOURCE}.product", enabled[0].name, ("MIG", "INVALID")
            ),
            f"{GPU_RESOURCE}.count": "0",
            f"{GPU_RESOURCE}.replicas": "0",
            f"{GPU_RESOURCE}.sharing-strategy": "",
            f"{GPU_RESOURCE}.memory": "0",
        }
    parent, first = machine.mig_devices[0]
    suffixes = ("MIG", label_profile(first.profile))
    labels = _resource_labels(GPU_RESOURCE, len(machine.mig_devices), parent.name, suffixes, config)
    return labels | _mig_attributes(GPU_RESOURCE, first)


def mig_mixed_labels(machine: Machine, config: Config) -> dict[str, str]:
    first_seen: dict[str, tuple[Gpu, MigDevice]] = {}
    counts: Counter[str] = Counter()
    for parent, mig in machine.mig_devices:
        name = label_profile(mig.profile)
        first_seen.setdefault(name, (parent, mig))
        counts[name] += 1
    labels: dict[str, str] = {}
    for name, (parent, mig) in first_seen.items():
        resource = f"{PREFIX}mig-{name}"
        labels |= _resource_labels(resource, counts[name], parent.name, ("MIG", name), config)
        labels |= _mig_attributes(resource, mig)
    return labels


def resource_labels(machine: Machine, config: Config) -> dict[str, str]:
    strategy = config.flags.mig_strategy
    if strategy not in MIG_STRATEGIES:
        # Validated lazily, as upstream: only a node with devices fails.
        raise LabelError(
            "error creating labeler: error creating resource labeler: failed to construct "
            f"MIG resource labeler: unknown strategy: {strategy}"
        )
    labels = full_gpu_labels(machine, config)
    if strategy == "single":
        labels |= mig_single_labels(machine, config)
    elif strategy == "mixed":
        labels |= mig_mixed_labels(machine, config)
    if strategy != "none":
        labels["nvidia.com/mig.strategy"] = strategy
    return labels
