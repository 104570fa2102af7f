"""What the generator's feature flags change, mapped from their names in one place.

`nvidia-cdi generate --feature-flags` and the device plugin's `--cdi-feature-flags` take
the toolkit's flag names (docs/cdi.md#generate); both callers turn them into these switches
here. Two steer the driver-file walk (`find_driver_files`), one the spec itself
(`GenerateOptions`). Flags that change nothing in this generator map to nothing; the
command warns about them, the plugin passes them silently as upstream does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

__all__ = ["FeatureOptions", "feature_options"]


class FeatureOptions(NamedTuple):
    """The switches the feature flags set."""

    # enable-explicit-driver-libraries: also mount libEGL.so, libGL.so, ... by name.
    explicit_libraries: bool = False
    # disable-ipc-discoverer: no persistenced / fabricmanager sockets.
    ipc_sockets: bool = True
    # no-additional-gids-for-device-nodes: for consumers older than CDI lib 0.7.
    no_additional_gids: bool = False


def feature_options(flags: Iterable[str]) -> FeatureOptions:
    """The switches for these flag names; names that change nothing are ignored."""
    given = set(flags)
    return FeatureOptions(
        explicit_libraries="enable-explicit-driver-libraries" in given,
        ipc_sockets="disable-ipc-discoverer" not in given,
        no_additional_gids="no-additional-gids-for-device-nodes" in given,
    )
