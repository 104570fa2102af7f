"""What a label template sees: the device model as plain data, and two filters.

Pure and free of Jinja2, so that every name a template can use is pinned by a table test
(tests/gfd/test_templating.py) and documented in docs/labels.md. Values are dicts, lists,
strings, numbers, booleans and None only: nothing in the context is an object with
methods a template could reach through.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from gfd.labelers.resources import family, label_profile
from gfd.labelers.values import fit, sanitise
from nvlib.config import Config
from nvlib.model import Gpu, Machine, MigDevice

if TYPE_CHECKING:
    from nvlib.topology import NvLink  # only its fields are read: pynvml stays unimported

GPU_RESOURCE = "nvidia.com/gpu"


def label_value(text: object) -> str:
    """The built-ins' value rule: sanitised, then cut to 63 characters if need be."""
    return fit("a label template value", sanitise(str(text)))


def gib(mib: object) -> int:
    """MiB to the nearest whole GiB (NVML reports a little less than the marketed size)."""
    if isinstance(mib, bool) or not isinstance(mib, int | float):
        raise TypeError(f"gib expects a number of MiB, got {mib!r}")
    return int((mib + 512) // 1024)


FILTERS = {"label_value": label_value, "gib": gib}


def _mig(mig: MigDevice) -> dict[str, object]:
    return {
        "index": mig.index,
        "uuid": mig.uuid,
        "profile": mig.profile,
        "label_profile": label_profile(mig.profile),
        "memory_mib": mig.memory_mib,
        "multiprocessors": mig.multiprocessors,
        "gi_slices": mig.gi_slices,
        "ci_slices": mig.ci_slices,
        "copy_engines": mig.copy_engines,
        "decoders": mig.decoders,
        "encoders": mig.encoders,
        "jpegs": mig.jpegs,
        "ofas": mig.ofas,
    }


def _gpu(gpu: Gpu, nvlinks: int) -> dict[str, object]:
    known = gpu.compute_major != 0
    fabric = None
    if gpu.fabric is not None:
        fabric = {
            "cluster_uuid": gpu.fabric.cluster_uuid,
            "clique_id": gpu.fabric.clique_id,
            "clique": f"{gpu.fabric.cluster_uuid}.{gpu.fabric.clique_id}",
        }
    return {
        "index": gpu.index,
        "uuid": gpu.uuid,
        "name": gpu.name,
        "product": sanitise(gpu.name),
        "memory_mib": gpu.memory_mib,
        "compute_capability": f"{gpu.compute_major}.{gpu.compute_minor}" if known else "",
        "compute_major": gpu.compute_major,
        "compute_minor": gpu.compute_minor,
        "family": family(gpu.compute_major, gpu.compute_minor) if known else "",
        "mig_capable": gpu.mig_capable,
        "mig_enabled": gpu.mig_enabled,
        "mig_devices": [_mig(mig) for mig in gpu.mig_devices],
        "fabric": fabric,
        "numa_node": gpu.numa_node,
        "pci_bus_id": gpu.sysfs_bus_id,
        "pci_class": gpu.pci_class or "",
        "minor": gpu.minor,
        "nvlinks": nvlinks,
    }


def _machine(machine: Machine, gpus: list[dict[str, object]]) -> dict[str, object]:
    cuda = machine.cuda_driver_version
    cuda_major, cuda_minor = cuda // 1000, (cuda % 1000) // 10
    return {
        "driver_version": machine.driver_version,
        "cuda_version": f"{cuda_major}.{cuda_minor}" if cuda else "",
        "cuda_major": cuda_major,
        "cuda_minor": cuda_minor,
        "machine_type": machine.machine_type or "",
        "gpus": gpus,
    }


def _sharing(config: Config) -> dict[str, object]:
    sharing = config.sharing
    section = sharing.replicated_resources()
    entries = [] if section is None else section.resources
    gpu = sharing.replication_for(GPU_RESOURCE)
    return {
        "strategy": sharing.sharing_strategy(),
        "replicas": gpu.replicas if gpu is not None and gpu.replicas > 0 else 1,
        "resources": [
            {"name": r.name, "replicas": r.replicas, "rename": r.rename} for r in entries
        ],
    }


def _nvlink(link: NvLink) -> dict[str, object]:
    return {
        "gpu": link.gpu,
        "link": link.link,
        "remote_pci_bus_id": link.remote_pci_bus_id,
        "peer": link.peer,
    }


def build_context(
    machine: Machine,
    config: Config,
    labels: Mapping[str, str],
    nvlinks: Sequence[NvLink] = (),
) -> dict[str, object]:
    """The variables of one pass, the same for every template of that pass."""
    per_gpu = Counter(link.gpu for link in nvlinks)
    gpus = [_gpu(gpu, per_gpu[gpu.index]) for gpu in machine.gpus]
    return {
        "machine": _machine(machine, gpus),
        "gpus": gpus,
        "nvlinks": [_nvlink(link) for link in nvlinks],
        "labels": dict(labels),
        "mig_strategy": config.flags.mig_strategy,
        "sharing": _sharing(config),
    }
