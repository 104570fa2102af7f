"""`gpu-feature-discovery --label-templates` and `--label-expiry` as installed.

Matrix: the shipped templates through the command (built-in labels unchanged, template
labels added); jinja2 imported only with templates; a template that does not compile
stops the start (exit 1, its file and line, nothing written); one failing at run time
costs only its own labels; SIGHUP with a broken template keeps the templates in force,
and a fixed one takes over at the next SIGHUP; the expiry directive renewed by every pass
of the daemon; and a non-editable install (wheel) carrying the shipped templates.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.test_gfd_cli import _env, daemon, gfd, wait_for

REPO = Path(__file__).resolve().parents[2]


def parse(text: str) -> dict[str, str]:
    """Label lines sorted by key (a key may be a prefix of another: gpu.count, gpu.count.X)."""
    labels = dict(line.split("=", 1) for line in text.splitlines())
    assert list(labels) == sorted(labels, key=str.encode), "label lines are sorted by key"
    return labels


def oneshot(profile: str, *args: str) -> dict[str, str]:
    result = gfd("--oneshot", "--nvml-mock", profile, "--output-file", "-", *args)
    assert result.returncode == 0, result.stderr
    return parse(result.stdout)


def test_builtin_templates_add_to_the_built_in_labels() -> None:
    plain = oneshot("mixed", "--no-timestamp")
    templated = oneshot("mixed", "--no-timestamp", "--label-templates", "builtin")
    added = {k: v for k, v in templated.items() if k not in plain}
    assert {k: templated[k] for k in plain} == plain, "built-in labels unchanged"
    assert added == {
        "nvidia.com/gpu.models": "2",
        "nvidia.com/gpu.count.Tesla-T4": "2",
        "nvidia.com/gpu.count.NVIDIA-A10": "1",
        "nvidia.com/gpu.memory-gib": "15",
        "nvidia.com/gpu.memory-gib.total": "54",
        "nvidia.com/gpu.nvlink": "false",
        "nvidia.com/gpu.fabric": "false",
    }


def test_templates_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "a.j2").write_text("nvidia.com/driver={{ machine.driver_version }}\n")
    result = gfd(
        "--oneshot",
        "--nvml-mock",
        "t4",
        "-o",
        "-",
        env=_env(GFD_LABEL_TEMPLATES=str(tmp_path)),
    )
    assert result.returncode == 0, result.stderr
    assert parse(result.stdout)["nvidia.com/driver"] == "550.54.15"


_IMPORTS = (
    "import sys\n"
    "from gfd.__main__ import main\n"
    "rc = main(['--oneshot', '--nvml-mock', 't4', '--output-file', sys.argv[1], *sys.argv[2:]])\n"
    "assert rc == 0\n"
    "print('jinja2' in sys.modules)\n"
)


@pytest.mark.parametrize(
    ("args", "imported"), [((), "False"), (("--label-templates=builtin",), "True")]
)
def test_jinja2_is_imported_only_with_templates(
    tmp_path: Path, args: tuple[str, ...], imported: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _IMPORTS, str(tmp_path / "gfd"), *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == imported


def test_syntax_error_stops_the_start(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.j2").write_text("nvidia.com/a=1\n\n{{ gpus | }}\n")
    out = tmp_path / "gfd"
    result = gfd("--nvml-mock", "t4", "-o", str(out), "--label-templates", str(tmp_path / "t"))
    assert result.returncode == 1
    assert f"ERROR label template {tmp_path / 't' / 'a.j2'}:3: " in result.stderr
    assert not out.exists(), "nothing written"


def test_a_failing_template_costs_only_its_labels(tmp_path: Path) -> None:
    (tmp_path / "a.j2").write_text("nvidia.com/gpu.count={{ gpus | length }}\n")
    (tmp_path / "b.j2").write_text("nvidia.com/b=1\n")
    result = gfd("--oneshot", "--nvml-mock", "t4", "-o", "-", "--label-templates", str(tmp_path))
    assert result.returncode == 0, result.stderr
    labels = parse(result.stdout)
    assert labels["nvidia.com/gpu.count"] == "1"  # the built-in one
    assert labels["nvidia.com/b"] == "1"
    assert (
        f"label template {tmp_path / 'a.j2'}:1: nvidia.com/gpu.count=1: a built-in label has"
        " this key (templates add labels, never override); its labels are left out of this pass"
    ) in result.stderr


def test_sighup_keeps_the_templates_in_force_when_the_new_ones_break(tmp_path: Path) -> None:
    templates, out = tmp_path / "t", tmp_path / "gfd"
    templates.mkdir()
    (templates / "a.j2").write_text("nvidia.com/version=1\n")
    config = tmp_path / "config.yaml"
    config.write_text("version: v1\n")
    args = ("--nvml-mock", "t4", "--sleep-interval", "infinite", "--output-file", str(out))
    with daemon(*args, "--config-file", str(config), "--label-templates", str(templates)) as proc:
        wait_for(out.exists)
        assert parse(out.read_text())["nvidia.com/version"] == "1"
        # A broken template and a config change that shows the reload happened.
        (templates / "a.j2").write_text("nvidia.com/version={{ 2 +}}\n")
        config.write_text(
            "version: v1\nsharing:\n  timeSlicing:\n    resources:\n"
            "    - name: nvidia.com/gpu\n      replicas: 4\n"
        )
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: parse(out.read_text()).get("nvidia.com/gpu.replicas") == "4")
        assert parse(out.read_text())["nvidia.com/version"] == "1", "the old ones in force"
        assert proc.poll() is None, "still running"
        (templates / "a.j2").write_text("nvidia.com/version=2\n")
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: parse(out.read_text()).get("nvidia.com/version") == "2")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
        stderr = proc.stderr.read() if proc.stderr else ""
    assert (
        f"ERROR label template {templates / 'a.j2'}:1: unexpected 'end of print statement';"
        " the label templates in force stay in force"
    ) in stderr


def _expiry(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# +expiry-time="), first
    return first.removeprefix("# +expiry-time=")


def test_expiry_renewed_by_every_pass(tmp_path: Path) -> None:
    out = tmp_path / "gfd"
    args = ("--nvml-mock", "t4", "--sleep-interval", "1s", "--label-expiry", "3")
    with daemon(*args, "--output-file", str(out)) as proc:
        wait_for(out.exists)
        written = time.time()
        first = _expiry(out)
        stamp = time.mktime(time.strptime(first, "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
        assert written + 1 < stamp <= written + 4, "now + 3 x 1s, rounded up"
        wait_for(lambda: _expiry(out) > first, timeout=15)
        assert parse("\n".join(out.read_text().splitlines()[1:]))["nvidia.com/gpu.count"] == "1"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0


def test_a_wheel_install_carries_the_shipped_templates(tmp_path: Path) -> None:
    """Not the editable checkout: the wheel, installed into a directory of its own."""
    wheels, target = tmp_path / "wheels", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheels), str(REPO)], check=True,
                   timeout=300)  # fmt: skip
    (wheel,) = wheels.glob("gpu_node_toolkit-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, timeout=300)  # fmt: skip
    code = (
        "import sys, gfd.templating\n"
        "print(gfd.templating.__file__)\n"
        "from gfd.__main__ import main\n"
        "sys.exit(main(['--oneshot', '--nvml-mock', 'mixed', '-o', '-', '--no-timestamp',"
        " '--label-templates', 'builtin']))\n"
    )
    env = _env(PYTHONPATH=str(target))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    where, *lines = result.stdout.splitlines()
    assert where == str(target / "gfd" / "templating" / "__init__.py")
    assert parse("\n".join(lines))["nvidia.com/gpu.count.NVIDIA-A10"] == "1"
    assert sorted(p.name for p in (target / "gfd" / "templates").iterdir()) == sorted(
        p.name for p in (REPO / "gfd" / "templates").glob("*.j2")
    )
    assert not os.environ.get("GFD_LABEL_TEMPLATES")
