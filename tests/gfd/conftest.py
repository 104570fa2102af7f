"""Fixtures for the gfd tests: a fake Kubernetes API server and a kubeconfig for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gfd.kubefake import FakeApiServer


@pytest.fixture
def api_server() -> Iterator[FakeApiServer]:
    with FakeApiServer() as server:
        yield server
    # Every NodeFeature body GFD sent was one the CRD accepts (a test that sends a bad one
    # on purpose clears what it checked), and carried no field it would silently prune.
    assert server.fake.rejections == [], f"NodeFeature bodies refused: {server.fake.rejections}"
    assert server.fake.pruned == [], f"NodeFeature fields the CRD prunes: {server.fake.pruned}"


@pytest.fixture
def kubeconfig(api_server: FakeApiServer, tmp_path: Path) -> str:
    return api_server.write_kubeconfig(tmp_path / "kubeconfig")
