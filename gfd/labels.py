"""The labelling pipeline: ordered labelers over one `Machine`, merged, checked, sorted.

As upstream (docs/labels.md#the-pipeline): a later labeler wins on a shared key; the
device labelers contribute nothing on a node without GPUs; vGPU labels come from PCI
independently of NVML.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from functools import lru_cache
from string import ascii_lowercase, digits

from gfd.labelers.capabilities import mig_capable_labels, mps_capable_labels
from gfd.labelers.fabric import clique_labels
from gfd.labelers.machine_type import machine_type_labels
from gfd.labelers.mode import mode_labels
from gfd.labelers.resources import resource_labels
from gfd.labelers.values import is_name, is_valid_value
from gfd.labelers.versions import version_labels
from gfd.labelers.vgpu import vgpu_labels
from nvlib.config import Config
from nvlib.model import Machine

log = logging.getLogger(__name__)

Labeler = Callable[[Machine, Config], dict[str, str]]

TIMESTAMP_KEY = "nvidia.com/gfd.timestamp"

DEVICE_LABELERS: tuple[Labeler, ...] = (
    machine_type_labels,
    version_labels,
    mig_capable_labels,
    mps_capable_labels,
    resource_labels,
    mode_labels,
    clique_labels,
)

_DNS_ALNUM = frozenset(ascii_lowercase + digits)
_DNS_CHARS = _DNS_ALNUM | {"-"}


def _is_dns_label(part: str) -> bool:
    return (
        bool(part)
        and part[0] in _DNS_ALNUM
        and part[-1] in _DNS_ALNUM
        and _DNS_CHARS.issuperset(part)
    )


@lru_cache(maxsize=4096)  # the same few dozen keys every pass; bounded: templates add keys
def is_valid_key(key: str) -> bool:
    """A Kubernetes qualified name with a DNS-subdomain prefix, as NFD requires."""
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not all(map(_is_dns_label, prefix.split(".")))):
        return False
    return len(name) <= 63 and is_name(name)


def compute_labels(
    machine: Machine, config: Config, timestamp: int | None = None
) -> dict[str, str]:
    """All labels for one pass, sorted by key. Raises LabelError when a labeler fails."""
    merged: dict[str, str] = {}
    if timestamp is not None:
        merged[TIMESTAMP_KEY] = str(timestamp)
    if machine.gpus:
        for labeler in DEVICE_LABELERS:
            merged |= labeler(machine, config)
    merged |= vgpu_labels(machine, config)
    checked = _drop_invalid(merged)
    if len(checked) <= 1:
        log.warning("No labels generated from any source")
    return dict(sorted(checked.items()))


def _drop_invalid(labels: Mapping[str, str]) -> dict[str, str]:
    """NFD silently drops an invalid label; we drop it too, but say so."""
    kept = {}
    for key, value in labels.items():
        if is_valid_key(key) and is_valid_value(value):
            kept[key] = value
        else:
            log.warning("Dropping label that Kubernetes would reject: %s=%s", key, value)
    return kept
