"""nvlib.mock: the `--nvml-mock` simulation every command activates, one per process.

Matrix: a reload with the same profile keeps the simulation (its faults too); a new
profile replaces the one activated here; one activated by someone else (a test) is
used whatever the profile, and `release` leaves it active; `release` deactivates the
one activated here.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from nvlib import mock, sim


@pytest.fixture(autouse=True)
def clean() -> Iterator[None]:
    yield
    mock.release()
    current = sim.active()
    if current is not None:
        current.deactivate()


def test_same_profile_is_kept_across_reloads() -> None:
    first = mock.simulation("t4")
    first.fall_off_bus(0)
    assert mock.simulation("t4") is first
    assert first.active and sim.active() is first


def test_new_profile_replaces_the_one_activated_here() -> None:
    first = mock.simulation("t4")
    second = mock.simulation("l40s")
    assert second is not first
    assert not first.active and sim.active() is second
    assert len(second.profile.gpus) == 2


def test_one_activated_elsewhere_is_used_as_it_is() -> None:
    with sim.activate("dgx-a100") as theirs:
        assert mock.simulation("dgx-a100") is theirs
        assert mock.simulation("t4") is theirs
        mock.release()
        assert theirs.active


def test_release_deactivates_the_one_activated_here() -> None:
    ours = mock.simulation("t4")
    mock.release()
    assert not ours.active and sim.active() is None
    assert mock.simulation("t4") is not ours
