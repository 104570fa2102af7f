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
    # A field the CRD does not declare is dropped without an error: a writer sending one
    # has a bug no status code shows.
    assert server.fake.pruned == [], f"NodeFeature fields the CRD prunes: {server.fake.pruned}"


@pytest.fixture
def kubeconfig(api_server: FakeApiServer, tmp_path: Path) -> str:
    return api_server.write_kubeconfig(tmp_path / "kubeconfig")
