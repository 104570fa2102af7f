"""cdi.feature_options: what each feature flag changes, for both callers of the generator.

Matrix: no flags; each flag that changes something; flags that change nothing here.
"""

from __future__ import annotations

import pytest

import cdi
from cdi import FeatureOptions


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        pytest.param((), FeatureOptions(), id="none"),
        pytest.param(
            ("enable-explicit-driver-libraries",),
            FeatureOptions(explicit_libraries=True),
            id="explicit-libraries",
        ),
        pytest.param(
            ("disable-ipc-discoverer",), FeatureOptions(ipc_sockets=False), id="no-ipc-sockets"
        ),
        pytest.param(
            ("no-additional-gids-for-device-nodes",),
            FeatureOptions(no_additional_gids=True),
            id="no-additional-gids",
        ),
        pytest.param(
            ("disable-nvsandboxutils", "enable-coherent-annotations"),
            FeatureOptions(),
            id="no-effect-here",
        ),
    ],
)
def test_feature_options(flags: tuple[str, ...], expected: FeatureOptions) -> None:
    assert cdi.feature_options(flags) == expected
