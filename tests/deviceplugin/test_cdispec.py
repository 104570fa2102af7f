"""The plugin's own CDI spec file (docs/cdi.md#beside-the-device-plugins-spec-file).

Matrix: nothing defined (all names written), a generator's `nvidia.yaml` defining all
(our file absent, removed if present) or some (only the rest written), names defined
only in /etc/cdi, names defined twice in our directory (never a third time), unreadable
spec files, no rewrite while the missing set is unchanged, a failing generation
(logged, not raised), no decision while a generator holds the directory's lock; then
the real generator on the simulator, by UUID and by index, with full-GPU entries for
MIG-enabled GPUs under mig-strategy none.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import yaml

from deviceplugin.cdispec import OWN_FILE, CdiKeeper, GenerateInput, generate_missing, mounted_roots
from nvlib import sim
from nvlib.discover import discover

NEEDED = tuple(f"nvidia.com/gpu=GPU-{i}" for i in range(3))


def spec_text(*names: str, kind: str = "nvidia.com/gpu") -> str:
    devices = "".join(
        f"- name: {n}\n  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n"
        for n in names
    )
    return f"---\ncdiVersion: 0.5.0\nkind: {kind}\ndevices:\n{devices}"


class Fixture:
    def __init__(self, tmp_path: Path) -> None:
        self.static = tmp_path / "etc-cdi"
        self.dynamic = tmp_path / "run-cdi"
        self.static.mkdir()
        self.dynamic.mkdir()
        self.generated: list[frozenset[str]] = []
        self.fail = False
        self.keeper = CdiKeeper(
            spec_dirs=(self.static, self.dynamic),
            own_path=self.dynamic / OWN_FILE,
            needed=NEEDED,
            generate=self._generate,
        )

    def _generate(self, missing: frozenset[str]) -> bytes:
        if self.fail:
            raise RuntimeError("no driver libraries")
        self.generated.append(missing)
        names = sorted(n.split("=", 1)[1] for n in missing)
        return spec_text(*names).encode()

    def own_names(self) -> list[str] | None:
        path = self.dynamic / OWN_FILE
        if not path.exists():
            return None
        doc = yaml.safe_load(path.read_text())
        return [f"{doc['kind']}={d['name']}" for d in doc["devices"]]


@pytest.fixture
def cdi(tmp_path: Path) -> Fixture:
    return Fixture(tmp_path)


def test_nothing_defined_writes_every_name(cdi: Fixture) -> None:
    cdi.keeper.check()
    assert cdi.own_names() == list(NEEDED)


def test_generator_defines_all_then_our_file_goes(cdi: Fixture) -> None:
    cdi.keeper.check()
    (cdi.dynamic / "nvidia.yaml").write_text(spec_text("GPU-0", "GPU-1", "GPU-2", "all"))
    cdi.keeper.recheck_if_changed()
    assert cdi.own_names() is None


def test_only_the_missing_names(cdi: Fixture) -> None:
    (cdi.dynamic / "nvidia.yaml").write_text(spec_text("GPU-0"))
    (cdi.static / "nvidia.json").write_text(
        '{"cdiVersion":"0.5.0","kind":"nvidia.com/gpu","devices":[{"name":"GPU-2",'
        '"containerEdits":{"deviceNodes":[{"path":"/dev/nvidia2"}]}}]}'
    )
    (cdi.dynamic / "other.yaml").write_text(spec_text("GPU-1", kind="example.com/gpu"))
    (cdi.dynamic / "broken.yaml").write_text("{not: [yaml")
    (cdi.dynamic / "ignored.yml").write_text(spec_text("GPU-1"))
    cdi.keeper.check()
    assert cdi.own_names() == ["nvidia.com/gpu=GPU-1"]


def test_never_a_second_definition_in_one_directory(
    cdi: Fixture, caplog: pytest.LogCaptureFixture
) -> None:
    (cdi.dynamic / "a.yaml").write_text(spec_text("GPU-0"))
    (cdi.dynamic / "b.yaml").write_text(spec_text("GPU-0"))
    cdi.keeper.check()
    assert cdi.own_names() == ["nvidia.com/gpu=GPU-1", "nvidia.com/gpu=GPU-2"]
    assert "defined more than once" in caplog.text


def test_rewritten_only_when_the_missing_set_changes(cdi: Fixture) -> None:
    cdi.keeper.check()
    (cdi.dynamic / "unrelated.json").write_text("{}")
    cdi.keeper.recheck_if_changed()
    assert len(cdi.generated) == 1
    (cdi.dynamic / "nvidia.yaml").write_text(spec_text("GPU-2"))
    cdi.keeper.recheck_if_changed()
    assert cdi.generated[-1] == frozenset(NEEDED[:2])
    (cdi.dynamic / OWN_FILE).unlink()  # someone removed our file: it comes back
    cdi.keeper.recheck_if_changed()
    assert cdi.own_names() == list(NEEDED[:2])


def test_failed_generation_is_logged(cdi: Fixture, caplog: pytest.LogCaptureFixture) -> None:
    cdi.fail = True
    cdi.keeper.check()
    assert cdi.own_names() is None
    assert "no driver libraries" in caplog.text
    cdi.fail = False
    cdi.keeper.check()  # retried, although nothing changed
    assert cdi.own_names() == list(NEEDED)


def test_decided_under_the_directory_lock(cdi: Fixture, caplog: pytest.LogCaptureFixture) -> None:
    """While a generator holds the spec directory's lock (`cdi.owners`) the check is
    skipped, not decided on files about to be replaced; the next tick does it."""
    from cdi.owners import spec_dir_lock

    with spec_dir_lock(cdi.dynamic, 5):
        cdi.keeper.recheck_if_changed()
        assert cdi.own_names() is None
        assert cdi.keeper.changed()  # tried again at the next tick
    assert "skipped" in caplog.text and str(cdi.dynamic) in caplog.text
    cdi.keeper.recheck_if_changed()
    assert cdi.own_names() == list(NEEDED)


def test_an_unusable_directory_is_reported_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "not-a-dir").write_text("")
    keeper = CdiKeeper(
        spec_dirs=(tmp_path / "not-a-dir",),
        own_path=tmp_path / "not-a-dir" / OWN_FILE,
        needed=NEEDED,
        generate=lambda missing: b"",
    )
    for _ in range(3):
        keeper.recheck_if_changed()
        assert keeper.changed()
    skipped = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1 and "not-a-dir" in skipped[0].getMessage()


@pytest.mark.parametrize(
    ("profile", "id_strategy", "full_gpus", "wanted"),
    [
        pytest.param("dgx-a100", "uuid", False, lambda m: [m.gpus[1].uuid], id="uuid"),
        pytest.param("dgx-a100", "index", False, lambda m: ["0", "7"], id="index"),
        pytest.param(
            "dgx-a100-mig", "uuid", True, lambda m: [m.gpus[0].uuid], id="mig-none-whole-gpu"
        ),
        pytest.param("dgx-a100-mig", "index", False, lambda m: ["3:1"], id="mig-index"),
    ],
)
def test_real_generator(profile: str, id_strategy: str, full_gpus: bool, wanted) -> None:  # type: ignore[no-untyped-def]
    with sim.activate(profile) as simulation:
        machine = discover(simulation.root, "")
        names = [f"nvidia.com/gpu={n}" for n in wanted(machine)]
        source = GenerateInput(
            machine=machine,
            driver_root=str(simulation.driver_root),
            dev_root=str(simulation.driver_root),
            host_root=str(simulation.root),
            hook_path="/usr/bin/nvidia-cdi-hook",
            id_strategy=id_strategy,
            full_gpus_for_mig_enabled=full_gpus,
            placeholder_nodes=simulation.device_nodes,
        )
        doc = yaml.safe_load(generate_missing(source, frozenset(names)))
    assert doc["kind"] == "nvidia.com/gpu"
    assert [f"{doc['kind']}={d['name']}" for d in doc["devices"]] == names
    assert "NVIDIA_VISIBLE_DEVICES=void" in doc["containerEdits"]["env"]


def test_generation_error_text(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR)
    with sim.activate("t4") as simulation:
        machine = discover(simulation.root, "")
        source = GenerateInput(
            machine=machine,
            driver_root=str(tmp_path),  # no driver here
            dev_root=str(tmp_path),
            host_root=str(simulation.root),
            hook_path="/usr/bin/nvidia-cdi-hook",
            id_strategy="uuid",
            full_gpus_for_mig_enabled=False,
        )
        keeper = CdiKeeper(
            spec_dirs=(tmp_path,),
            own_path=tmp_path / OWN_FILE,
            needed=(f"nvidia.com/gpu={machine.gpus[0].uuid}",),
            generate=lambda missing: generate_missing(source, missing),
        )
        keeper.check()
    assert not (tmp_path / OWN_FILE).exists()
    assert "Failed to write the CDI spec" in caplog.text


# --- the driver mounted in the plugin's container (--driver-root-ctr-path) ---


@pytest.mark.parametrize(
    ("layout", "host_roots", "expected"),
    [
        pytest.param(None, ("/", "/"), ("/", "/", ()), id="no-mount-read-as-given"),
        pytest.param(
            ["usr/lib"], ("/run/nvidia/driver", "/run/nvidia/driver"),
            ("{ctr}", "/", (("{ctr}", "/run/nvidia/driver"), ("/dev", "/run/nvidia/driver/dev"))),
            id="mount-without-dev",
        ),
        pytest.param(
            ["usr/lib", "dev"], ("/run/nvidia/driver", "/"),
            ("{ctr}", "{ctr}", (("{ctr}", "/run/nvidia/driver"), ("{ctr}/dev", "/dev"))),
            id="mount-with-dev",
        ),
    ],
)  # fmt: skip
def test_mounted_roots(
    tmp_path: Path,
    layout: list[str] | None,
    host_roots: tuple[str, str],
    expected: tuple[str, str, tuple[tuple[str, str], ...]],
) -> None:
    ctr = tmp_path / "driver-root"
    for directory in layout or []:
        (ctr / directory).mkdir(parents=True)

    def fill(text: str) -> str:
        return text.replace("{ctr}", str(ctr))

    want = (
        fill(expected[0]),
        fill(expected[1]),
        tuple((fill(a), fill(b)) for a, b in expected[2]),
    )
    assert mounted_roots(*host_roots, str(ctr)) == want


def test_generated_from_a_mount_names_the_host_paths(tmp_path: Path) -> None:
    """Read under the mount, written as the host has it: nothing of the mount is left."""
    host = "/run/nvidia/driver"
    with sim.activate("dgx-a100") as simulation:
        mount = tmp_path / "driver-root"
        shutil.copytree(simulation.driver_root, mount, symlinks=True)
        machine = discover(simulation.root, "")
        driver_root, dev_root, moves = mounted_roots(host, host, str(mount))
        source = GenerateInput(
            machine=machine,
            driver_root=driver_root,
            dev_root=dev_root,
            host_root=str(simulation.root),
            hook_path="/usr/bin/nvidia-cdi-hook",
            id_strategy="index",
            full_gpus_for_mig_enabled=False,
            placeholder_nodes=simulation.device_nodes,
            moves=moves,
        )
        text = generate_missing(source, frozenset({"nvidia.com/gpu=0"})).decode()
    assert str(tmp_path) not in text
    doc = yaml.safe_load(text)
    nodes = doc["devices"][0]["containerEdits"]["deviceNodes"]
    assert [n["hostPath"] for n in nodes] == [f"{host}/dev/nvidia0"]
    mounts = doc["containerEdits"]["mounts"]
    assert mounts and all(m["hostPath"] == host + m["containerPath"] for m in mounts
                          if "persistenced" not in m["hostPath"])  # fmt: skip
