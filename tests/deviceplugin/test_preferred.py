"""GetPreferredAllocation policies (docs/deviceplugin.md#getpreferredallocation), pure.

Matrix: the aligned path on hand-made topologies (PCIe switches, NUMA, NVLink islands,
required devices, size 1, impossible requests), checked against a literal exhaustive
search of the spec's partitions for random link tables up to 8 GPUs; the greedy path's
upstream guarantees for `distributed` and `packed`; the resource-level wrapper's
choice of path and its fallback from the aligned path (upstream #2038).
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator, Sequence

import pytest

from deviceplugin.devices import Device, Resource
from deviceplugin.errors import RequestError
from deviceplugin.preferred import (
    PairScore,
    PreferredAllocator,
    aligned_allocation,
    greedy_allocation,
    pair_score,
    set_score,
)

SYSTEM, NODE, HOSTBRIDGE, MULTIPLE, SINGLE, INTERNAL = 50, 40, 30, 20, 10, 0


def table(
    levels: dict[tuple[int, int], tuple[int | None, int]], default: int = SYSTEM
) -> PairScore:
    """A pair-score function from {(a, b): (pcie level, nvlinks)}; others at `default`."""

    def score(a: int, b: int) -> int:
        level, links = levels.get((min(a, b), max(a, b)), (default, 0))
        return pair_score(level, links)

    return score


# Two PCIe switches of four GPUs each, the switches on different CPUs.
TWO_SWITCHES = table(
    {
        (a, b): (SINGLE, 0)
        for group in ((0, 1, 2, 3), (4, 5, 6, 7))
        for a, b in itertools.combinations(group, 2)
    }
)
# NVLink pairs (0,1) x2 links, (2,3) x1, (4,5) x2, (6,7) x1, all on one NUMA node.
NVLINK_PAIRS = table(
    {(0, 1): (NODE, 2), (2, 3): (NODE, 1), (4, 5): (NODE, 2), (6, 7): (NODE, 1)}, default=NODE
)
# A fully connected NVSwitch node: every pair has 12 links.
NVSWITCH = table({p: (SYSTEM, 12) for p in itertools.combinations(range(8), 2)})


@pytest.mark.parametrize(
    ("score", "available", "required", "size", "expected"),
    [
        pytest.param(TWO_SWITCHES, range(8), (), 2, (0, 1), id="switch-pair-lowest"),
        pytest.param(TWO_SWITCHES, range(8), (), 4, (0, 1, 2, 3), id="switch-four"),
        pytest.param(TWO_SWITCHES, (1, 2, 5, 6), (), 2, (1, 2), id="switch-remnants"),
        pytest.param(TWO_SWITCHES, range(8), (5,), 2, (4, 5), id="switch-required"),
        pytest.param(TWO_SWITCHES, (0, 4, 5, 6), (), 3, (4, 5, 6), id="switch-three-of-one"),
        pytest.param(NVLINK_PAIRS, range(8), (), 2, (0, 1), id="nvlink-best-pair"),
        pytest.param(NVLINK_PAIRS, range(8), (3,), 2, (2, 3), id="nvlink-required"),
        pytest.param(NVLINK_PAIRS, (1, 2, 3, 4, 5), (), 2, (4, 5), id="nvlink-island-kept"),
        pytest.param(NVLINK_PAIRS, range(8), (), 4, (0, 1, 4, 5), id="nvlink-two-islands"),
        pytest.param(NVSWITCH, range(8), (), 3, (0, 1, 2), id="nvswitch-ties-lowest"),
        pytest.param(NVSWITCH, (7, 3, 5), (), 1, (3,), id="size-one-lowest"),
        pytest.param(NVSWITCH, (7, 3, 5), (5,), 1, (5,), id="size-one-required"),
        pytest.param(NVSWITCH, range(8), (), 8, tuple(range(8)), id="all"),
        pytest.param(NVSWITCH, (1, 2), (), 3, (), id="too-few"),
        pytest.param(NVSWITCH, range(8), (1, 2, 3), 2, (), id="too-many-required"),
        pytest.param(NVSWITCH, range(8), (), 0, (), id="size-zero"),
        pytest.param(NVSWITCH, (1, 2, 3), (4,), 2, (), id="required-not-available"),
    ],
)
def test_aligned_table(score, available, required, size, expected) -> None:  # type: ignore[no-untyped-def]
    assert aligned_allocation(list(available), list(required), size, score) == expected


def set_partitions(items: Sequence[int]) -> Iterator[list[list[int]]]:
    """Every partition of `items` into blocks (Bell(8) = 4140 of them)."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for partition in set_partitions(rest):
        yield [[first], *partition]
        for i in range(len(partition)):
            yield [*partition[:i], [first, *partition[i]], *partition[i + 1 :]]


def literal_search(
    available: Sequence[int], required: Sequence[int], size: int, score: PairScore
) -> tuple[int, ...]:
    """The spec's objective by brute force, independently of the implementation: every
    partition of the GPUs whose blocks all hold `size`, but one that holds the padding
    (`size - pad` GPUs); best partition score, then best whole set holding `required`,
    then the lowest indices."""
    pad = -len(available) % size
    best: tuple[int, int, tuple[int, ...]] | None = None
    for blocks in set_partitions(sorted(available)):
        short = [b for b in blocks if len(b) != size]
        if (pad == 0 and short) or (pad and (len(short) != 1 or len(short[0]) != size - pad)):
            continue
        total = sum(set_score(b, score) for b in blocks)
        for block in blocks:
            if len(block) != size or not set(required) <= set(block):
                continue
            candidate = (total, set_score(block, score), tuple(sorted(block)))
            if (
                best is None
                or candidate[:2] > best[:2]
                or (candidate[:2] == best[:2] and candidate[2] < best[2])
            ):
                best = candidate
    return best[2] if best else ()


def random_table(rng: random.Random, n: int) -> PairScore:
    levels = {
        p: (
            rng.choice([INTERNAL, SINGLE, MULTIPLE, HOSTBRIDGE, NODE, SYSTEM]),
            rng.choice([0, 0, 1, 2]),
        )
        for p in itertools.combinations(range(n), 2)
    }
    return table(levels)


# Every size and up to two required GPUs on 2..8 GPUs, each with its own random table.
CASES = [
    (n * 100 + size * 10 + nreq, n, size, nreq)
    for n in range(2, 9)
    for size in range(1, n + 1)
    for nreq in range(min(size, 2) + 1)
]


@pytest.mark.parametrize(
    ("seed", "n", "size", "nreq"),
    CASES,
    ids=[f"n{c[1]}-size{c[2]}-req{c[3]}-s{c[0]}" for c in CASES],
)
def test_aligned_equals_exhaustive_search(seed: int, n: int, size: int, nreq: int) -> None:
    rng = random.Random(seed)
    score = random_table(rng, n)
    available = list(range(n))
    required = sorted(rng.sample(available, nreq))
    assert aligned_allocation(available, required, size, score) == literal_search(
        available, required, size, score
    )


def test_aligned_is_deterministic_whatever_the_input_order() -> None:
    first = aligned_allocation([7, 1, 5, 3, 2], [], 2, NVLINK_PAIRS)
    assert first == aligned_allocation([2, 3, 5, 1, 7], [], 2, NVLINK_PAIRS) == (2, 3)


def test_more_than_eight_gpus_grow_a_good_set() -> None:
    # 16 GPUs, NVLink pairs (2k, 2k+1): the grown set is a linked pair.
    score = table({(2 * k, 2 * k + 1): (NODE, 2) for k in range(8)}, default=NODE)
    assert aligned_allocation(range(16), [], 2, score) == (0, 1)
    assert aligned_allocation(range(16), [9], 2, score) == (8, 9)


def replicas(gpus: int, count: int) -> list[str]:
    return [f"GPU-{g}::{k}" for g in range(gpus) for k in range(count)]


def per_gpu(ids: Sequence[str]) -> list[int]:
    counts: dict[str, int] = {}
    for i in ids:
        counts[i.split("::")[0]] = counts.get(i.split("::")[0], 0) + 1
    return sorted(counts.values(), reverse=True)


@pytest.mark.parametrize(
    ("ids", "available", "size", "policy", "spread"),
    [
        pytest.param(replicas(2, 4), replicas(2, 4), 2, "distributed", [1, 1], id="dist-2x4-size2"),
        pytest.param(replicas(2, 4), replicas(2, 4), 4, "distributed", [2, 2], id="dist-2x4-size4"),
        pytest.param(replicas(3, 2), replicas(3, 2), 3, "distributed", [1, 1, 1], id="dist-3x2"),
        pytest.param(replicas(2, 4), replicas(2, 4), 5, "packed", [4, 1], id="packed-2x4-size5"),
        pytest.param(replicas(2, 4), replicas(2, 4), 3, "packed", [3], id="packed-fills-one"),
        pytest.param(replicas(2, 4), replicas(2, 4), 3, "bogus", [2, 1], id="unknown-is-dist"),
    ],
)
def test_greedy_spread(ids, available, size, policy, spread) -> None:  # type: ignore[no-untyped-def]
    assert per_gpu(greedy_allocation(available, [], size, ids, policy)) == spread


def test_greedy_avoids_partially_allocated_gpus() -> None:
    got = greedy_allocation(
        ["GPU-0::0", "GPU-0::1", "GPU-1::1"], [], 2, replicas(2, 2), "distributed"
    )
    assert per_gpu(got) == [1, 1]


def test_greedy_packed_prefers_partially_allocated_gpus() -> None:
    got = greedy_allocation(["GPU-0::0", "GPU-0::1", "GPU-1::1"], [], 1, replicas(2, 2), "packed")
    assert got == ["GPU-1::1"]


def test_greedy_required_first_and_kubelet_order() -> None:
    ids = replicas(2, 2)
    got = greedy_allocation(
        ["GPU-1::0", "GPU-0::1", "GPU-0::0", "GPU-1::1"], ["GPU-1::1"], 2, ids, "distributed"
    )
    assert got == ["GPU-1::1", "GPU-0::1"]


def test_greedy_not_enough() -> None:
    with pytest.raises(RequestError, match=r"^not enough available devices to satisfy allocation$"):
        greedy_allocation(["GPU-0::0"], [], 2, replicas(1, 2), "distributed")


def gpus(n: int) -> Resource:
    return Resource(
        "nvidia.com/gpu",
        tuple(Device(f"GPU-{i}", str(i), i, f"GPU-{i}", (f"/dev/nvidia{i}",)) for i in range(n)),
    )


def test_wrapper_uses_aligned_for_full_gpus() -> None:
    allocator = PreferredAllocator(gpus(8), NVLINK_PAIRS, "distributed")
    assert allocator.preferred([f"GPU-{i}" for i in (7, 6, 2, 3)], [], 2) == ["GPU-2", "GPU-3"]


def test_wrapper_falls_back_to_greedy_on_unknown_ids() -> None:
    allocator = PreferredAllocator(gpus(4), NVLINK_PAIRS, "distributed")
    assert allocator.preferred(["GPU-9", "GPU-3", "GPU-1"], [], 2) == ["GPU-3", "GPU-1"]


def test_wrapper_without_topology_is_greedy() -> None:
    allocator = PreferredAllocator(gpus(4), None, "distributed")
    assert allocator.preferred(["GPU-2", "GPU-0", "GPU-1"], [], 2) == ["GPU-2", "GPU-0"]


def test_wrapper_uses_greedy_for_replicas() -> None:
    resource = Resource(
        "nvidia.com/gpu",
        tuple(Device(i, "0", 0, "GPU-0", ()) for i in replicas(1, 2))
        + tuple(Device(i, "1", 1, "GPU-1", ()) for i in replicas(2, 2)[2:]),
    )
    allocator = PreferredAllocator(resource, NVLINK_PAIRS, "distributed")
    assert per_gpu(allocator.preferred(replicas(2, 2), [], 2)) == [1, 1]
