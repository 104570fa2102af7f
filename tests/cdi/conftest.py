"""Fixtures for the `cdi` tests; the builders live in `cdi_fixtures` beside this file.

Test directories have no `__init__.py` (`--import-mode=importlib`), so this directory is
put on `sys.path` once, here, for the test modules to import their builders.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from cdi_fixtures import DriverRoot, build_driver_root


@pytest.fixture
def driver_root(tmp_path: Path) -> Callable[..., DriverRoot]:
    """`driver_root(gpus=8, caps=...)` -> a DriverRoot under tmp_path/driver-root."""

    def make(**kwargs: object) -> DriverRoot:
        return build_driver_root(tmp_path / "driver-root", **kwargs)  # type: ignore[arg-type]

    return make
