"""Placing a profile's MIG layout on a GPU the way the driver would.

A layout is a list of MIG profile names (`3g.20gb`, `1c.2g.10gb`), one GPU instance
with one compute instance each. Each GPU instance needs a free placement; the first
assignment in placement order wins, found by a small backtracking search because a
greedy one rejects valid layouts (A100: 3g+2g+1g+1g fits only with the 3g at slice 4).
GPU instance ids follow the driver's numbering of placements as nodes of a binary
tree over the eight memory slices: the whole GPU is 0, halves 1-2, quarters 3-6,
eighths 7-14 (nvidia-smi shows 3g.20gb at slice 4 as GI 2, 1g.5gb at slice 0 as GI 7).
"""

from __future__ import annotations

from typing import NamedTuple

from nvlib.sim.errors import ProfileError
from nvlib.sim.gpus import MEMORY_SLICES, ci_profiles, mig_profile_name
from nvlib.sim.profile import CiProfile, GiProfile


class Placed(NamedTuple):
    name: str
    gi: GiProfile
    ci: CiProfile
    start: int

    @property
    def gi_id(self) -> int:
        size = self.gi.placement_size
        return MEMORY_SLICES // size - 1 + self.start // size


def known_names(gi_profiles: tuple[GiProfile, ...]) -> dict[str, tuple[GiProfile, CiProfile]]:
    return {mig_profile_name(gi, ci): (gi, ci) for gi in gi_profiles for ci in ci_profiles(gi)}


def place(
    gi_profiles: tuple[GiProfile, ...], names: list[str], path: str, model: str
) -> tuple[Placed, ...]:
    """The layout's placements, or ProfileError naming the entry or the layout at fault."""
    known = known_names(gi_profiles)
    wanted: list[tuple[str, GiProfile, CiProfile]] = []
    for i, name in enumerate(names):
        if name not in known:
            raise ProfileError(
                f"{path}[{i}]",
                name,
                f"not a MIG profile of {model}; known: " + ", ".join(sorted(known)),
            )
        wanted.append((name, *known[name]))
    for _, gi, _ in wanted:
        if sum(1 for _, g, _ in wanted if g is gi) > gi.instances:
            raise ProfileError(path, names, f"more than {gi.instances} x {gi.name} on one GPU")
    starts = _search(wanted, 0, [False] * MEMORY_SLICES, [])
    if starts is None:
        raise ProfileError(path, names, "the MIG devices do not fit on one GPU")
    return tuple(
        Placed(name, gi, ci, start) for (name, gi, ci), start in zip(wanted, starts, strict=True)
    )


def _search(
    wanted: list[tuple[str, GiProfile, CiProfile]], i: int, used: list[bool], starts: list[int]
) -> list[int] | None:
    if i == len(wanted):
        return starts
    gi = wanted[i][1]
    for start in gi.placement_starts:
        span = range(start, start + gi.placement_size)
        if any(used[s] for s in span):
            continue
        for s in span:
            used[s] = True
        found = _search(wanted, i + 1, used, [*starts, start])
        for s in span:
            used[s] = False
        if found is not None:
            return found
    return None
