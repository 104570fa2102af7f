"""GetPreferredAllocation: which devices the kubelet should pick.

Two pure policies. Full GPUs take the topology-aware *aligned* path: maximise the score
of the whole node's partition into sets of the requested size, so the chosen set keeps
NVLink islands together and leaves the rest well grouped. Replicas and MIG devices take
the *greedy* path, which spreads (`distributed`) or packs (`packed`) replicas over
physical GPUs. Nothing here calls NVML: the link scores are read once per plugin start
(docs/deviceplugin.md#getpreferredallocation).
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable, Mapping, Sequence

from deviceplugin.devices import Resource, strip_replica
from deviceplugin.errors import RequestError

log = logging.getLogger(__name__)

# nvmlDeviceGetTopologyCommonAncestor level -> pair score (go-gpuallocator's weights).
PCIE_SCORES: Mapping[int, int] = {
    0: 60,  # NVML_TOPOLOGY_INTERNAL: same board
    10: 50,  # NVML_TOPOLOGY_SINGLE: one PCIe switch
    20: 40,  # NVML_TOPOLOGY_MULTIPLE: several PCIe switches
    30: 30,  # NVML_TOPOLOGY_HOSTBRIDGE
    40: 20,  # NVML_TOPOLOGY_NODE: same CPU / NUMA node
    50: 10,  # NVML_TOPOLOGY_SYSTEM: across CPUs
}
NVLINK_SCORE = 100  # per NVLink joining the pair
# Up to this many available GPUs the aligned answer is the exhaustive optimum;
# beyond it the partition count explodes (16 GPUs in fours: 2.6 million) and a greedy
# growth of the set stands in.
EXACT_LIMIT = 8

PairScore = Callable[[int, int], int]


def pair_score(pcie_level: int | None, nvlinks: int) -> int:
    pcie = 0 if pcie_level is None else PCIE_SCORES.get(pcie_level, 0)
    return pcie + NVLINK_SCORE * nvlinks


def set_score(devices: Sequence[int], score: PairScore) -> int:
    return sum(score(a, b) for a, b in itertools.combinations(devices, 2))


def aligned_allocation(
    available: Sequence[int], required: Sequence[int], size: int, score: PairScore
) -> tuple[int, ...]:
    """The best set of `size` GPU indices holding `required`, or () when none fits.

    Objective ([PROJECT]: upstream takes the first it finds on a tie): the highest
    partition score over partitions of the available GPUs into sets of `size` (padding
    slots all in one set) that keep the answer whole, then the highest score of the
    answer itself, then the lowest indices.
    """
    devices = tuple(sorted(set(available)))
    must = tuple(sorted(set(required)))
    if size <= 0 or len(devices) < size or len(must) > size or not set(must) <= set(devices):
        return ()
    if len(devices) > EXACT_LIMIT:
        return _grown_set(devices, must, size, score)
    pad = -len(devices) % size
    rest_score = _partition_scorer(size, score)
    others = [d for d in devices if d not in must]
    best: tuple[int, int, tuple[int, ...]] | None = None
    for extra in itertools.combinations(others, size - len(must)):
        chosen = tuple(sorted(must + extra))
        own = set_score(chosen, score)
        rest = frozenset(devices) - frozenset(chosen)
        total = own + rest_score(rest, pad)
        if (
            best is None
            or (total, own) > best[:2]
            or ((total, own) == best[:2] and chosen < best[2])
        ):
            best = (total, own, chosen)
    return best[2] if best is not None else ()


def _partition_scorer(size: int, score: PairScore) -> Callable[[frozenset[int], int], int]:
    """Best score of `rest` cut into sets of `size`, `pad` empty slots in one of them."""

    @functools.cache
    def best(rest: frozenset[int], pad: int) -> int:
        if not rest:
            return 0
        first = min(rest)
        others = sorted(rest - {first})
        top = 0
        # The set holding the lowest device: full, or (while padding is left) the padded
        # one; enumerating only these sees every partition exactly once.
        for slots, pad_left in ((size, pad), (size - pad, 0)) if pad else ((size, 0),):
            if slots - 1 > len(others):
                continue
            for mates in itertools.combinations(others, slots - 1):
                group = (first, *mates)
                value = set_score(group, score) + best(rest - frozenset(group), pad_left)
                top = max(top, value)
        return top

    return best


def _grown_set(
    devices: tuple[int, ...], must: tuple[int, ...], size: int, score: PairScore
) -> tuple[int, ...]:
    """Past EXACT_LIMIT: grow the set one GPU at a time by best gain, ties to low index."""
    chosen = list(must)
    if not chosen:
        pairs = itertools.combinations(devices, 2)
        seed = max(pairs, key=lambda p: (score(*p), -p[0], -p[1]), default=(devices[0],))
        chosen = list(seed[: min(size, len(seed))])
    while len(chosen) < size:
        pick = max(
            (d for d in devices if d not in chosen),
            key=lambda d: (sum(score(d, c) for c in chosen), -d),
        )
        chosen.append(pick)
    return tuple(sorted(chosen))


def greedy_allocation(
    available: Sequence[str],
    required: Sequence[str],
    size: int,
    resource_ids: Sequence[str],
    policy: str,
) -> list[str]:
    """Replicas and MIG devices: spread over GPUs, or pack them, deterministically.

    Candidates keep the kubelet's order; each pick goes to the GPU with the fewest
    (`distributed`) or most (`packed`) replicas already allocated, then the one picked
    least in this call, then the first candidate.
    """
    known = set(resource_ids)
    must = set(required)
    candidates = list(dict.fromkeys(i for i in available if i in known and i not in must))
    needed = size - len(required)
    if len(candidates) < needed:
        raise RequestError("not enough available devices to satisfy allocation")
    total: dict[str, int] = {}
    for device_id in resource_ids:
        gpu = strip_replica(device_id)
        total[gpu] = total.get(gpu, 0) + 1
    free: dict[str, int] = {}
    for device_id in candidates:
        gpu = strip_replica(device_id)
        free[gpu] = free.get(gpu, 0) + 1
    picks = dict.fromkeys(free, 0)
    sign = -1 if policy == "packed" else 1

    def rank(device_id: str) -> tuple[int, int]:
        gpu = strip_replica(device_id)
        return sign * (total[gpu] - free[gpu]), picks[gpu]

    chosen: list[str] = []
    for _ in range(max(needed, 0)):
        pick = min(candidates, key=rank)  # min keeps the first of equals: kubelet's order
        candidates.remove(pick)
        gpu = strip_replica(pick)
        free[gpu] -= 1
        picks[gpu] += 1
        chosen.append(pick)
    return [*required, *chosen]


class PreferredAllocator:
    """One resource's policy, with its link scores read once at plugin start."""

    def __init__(self, resource: Resource, score: PairScore | None, policy: str) -> None:
        self._resource = resource
        self._score = score
        self._policy = policy
        self._ids = tuple(d.id for d in resource.devices)
        self._gpu_index = {d.id: d.gpu_index for d in resource.devices}
        self._aligned = resource.aligned_allocation_supported
        self._cached = functools.lru_cache(maxsize=256)(self._aligned_ids)

    def preferred(self, available: Sequence[str], required: Sequence[str], size: int) -> list[str]:
        """The IDs to suggest; RequestError carries upstream's text for the RPC."""
        if self._aligned and not any("::" in i for i in available):
            try:
                return list(self._cached(tuple(available), tuple(required), size))
            except RequestError as err:
                # A lost GPU or a stale ID must not fail every pod (upstream #2038).
                log.warning("aligned allocation failed (%s); falling back to greedy", err)
        return greedy_allocation(available, required, size, self._ids, self._policy)

    def _aligned_ids(
        self, available: tuple[str, ...], required: tuple[str, ...], size: int
    ) -> tuple[str, ...]:
        if self._score is None:
            raise RequestError("no link topology was read for this resource")
        for device_id in (*available, *required):
            if device_id not in self._gpu_index:
                raise RequestError(f"no device with uuid: {device_id}")
        by_index = {self._gpu_index[i]: i for i in available}
        picked = aligned_allocation(
            [self._gpu_index[i] for i in available],
            [self._gpu_index[i] for i in required],
            size,
            self._score,
        )
        return tuple(by_index[i] for i in picked)
