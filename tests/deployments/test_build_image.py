"""tools/build_image.py without podman: its inputs, its commands, and the wheel it ships.

The build itself, and every run of the image, is tests/e2e/test_image.py.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helm_chart import ROOT, load_tool

from nvlib import __version__

build_image = load_tool("build_image")


def test_default_tag_is_local_and_versioned() -> None:
    assert build_image.default_tag() == f"localhost/gpu-node-toolkit:{__version__}"
    assert build_image.parse([]).tag == build_image.default_tag()


@pytest.mark.parametrize(
    ("text", "suite"),
    [
        ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n', "bookworm"),
        ('VERSION_CODENAME="trixie"\n', "trixie"),
    ],
)
def test_host_suite(tmp_path: Path, text: str, suite: str) -> None:
    release = tmp_path / "os-release"
    release.write_text(text)
    assert build_image.host_suite(release) == suite


def test_host_suite_missing_names_the_file(tmp_path: Path) -> None:
    release = tmp_path / "os-release"
    release.write_text('ID=alpine\nVERSION_CODENAME=""\n')
    with pytest.raises(build_image.BuildError, match=f"{release} names no VERSION_CODENAME"):
        build_image.host_suite(release)


def test_apt_sources_are_the_enabled_files(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("\n")  # empty: nothing to paste
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    for name in ("b.sources", "a.list", "c.list.disabled", "d.save"):
        (parts / name).write_text("Types: deb\n")
    assert build_image.apt_sources(tmp_path) == [parts / "a.list", parts / "b.sources"]


def test_no_apt_sources_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(build_image.BuildError, match=f"no apt sources in {tmp_path}"):
        build_image.apt_sources(tmp_path)


def test_mmdebstrap_command_makes_a_python_minbase(tmp_path: Path) -> None:
    sources = [Path("/etc/apt/sources.list.d/debian.sources")]
    command = build_image.mmdebstrap_command("bookworm", sources, tmp_path / "base.tar")
    assert command[:3] == ["mmdebstrap", "--variant=minbase", "--include=python3"]
    assert command[-3:] == ["bookworm", str(tmp_path / "base.tar"), str(sources[0])]
    assert "--dpkgopt=path-include=/usr/share/doc/*/copyright" in command


def test_build_command_is_offline_and_labelled(tmp_path: Path) -> None:
    opts = build_image.parse(["--podman", "sudo podman", "--tag", "x:1"])
    command = build_image.build_command(opts, "base:1", tmp_path, "9.9")
    assert command[:3] == ["sudo", "podman", "build"]
    assert "--network=none" in command and "--pull=never" in command
    args = {command[i + 1] for i, word in enumerate(command) if word == "--build-arg"}
    assert {"BASE=base:1", "VERSION=9.9"} <= args
    assert command[-3:] == ["--tag", "x:1", str(tmp_path)]


def test_missing_base_image_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    # `false` as podman: every image is missing, and nothing is built.
    status = build_image.main(["--podman", "false", "--base", "nowhere:1"])
    assert status == 1
    assert "--base nowhere:1: podman has no such image" in capsys.readouterr().err


def test_wheel_carries_licence_and_notice(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
         str(tmp_path), str(ROOT)],
        check=True, timeout=300,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("gpu_node_toolkit-*.whl")
    with zipfile.ZipFile(wheel) as z:
        licences = {Path(n).name: z.read(n) for n in z.namelist() if "/licenses/" in n}
    assert licences == {
        "LICENSE": (ROOT / "LICENSE").read_bytes(),
        "NOTICE": (ROOT / "NOTICE").read_bytes(),
    }
