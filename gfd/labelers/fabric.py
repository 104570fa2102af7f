"""`nvidia.com/gpu.clique`: the IMEX domain of fabric-attached GPUs."""

from __future__ import annotations

import logging

from nvlib.config import Config
from nvlib.model import Machine

log = logging.getLogger(__name__)


def clique_labels(machine: Machine, _config: Config) -> dict[str, str]:
    attached = [gpu.fabric for gpu in machine.gpus if gpu.fabric is not None]
    if not attached:
        return {}
    clusters = sorted({fabric.cluster_uuid for fabric in attached})
    if len(clusters) > 1:
        log.warning("Cluster UUIDs are non-unique: %s", clusters)
        return {}
    cliques = sorted({fabric.clique_id for fabric in attached})
    if len(cliques) > 1:
        log.warning("Clique IDs are non-unique: %s", cliques)
        return {}
    return {"nvidia.com/gpu.clique": f"{clusters[0]}.{cliques[0]}"}
