"""The package's public face: what `import cdi` offers and what it costs.

Matrix: every exported name resolves (lazily); submodules are reachable from a bare
`import cdi`; a fresh interpreter importing `cdi` loads no heavy module (`yaml`,
`pynvml`, `kubernetes`, `argparse`), nor does the generate path: the command starts on
every node.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import cdi


@pytest.mark.parametrize("name", cdi.__all__)
def test_every_export_resolves(name: str) -> None:
    assert getattr(cdi, name) is not None


def test_submodules_from_a_bare_import() -> None:
    assert cdi.names.gpu_name is cdi.gpu_name
    assert callable(cdi.validate_spec)


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        cdi.nope  # noqa: B018


CHECK = """
import sys
{imports}
heavy = ("yaml", "pynvml", "kubernetes", "argparse")
print(",".join(sorted(m for m in heavy if m in sys.modules)))
"""


@pytest.mark.parametrize(
    ("imports", "allowed"),
    [
        pytest.param("import cdi", set(), id="import-cdi"),
        pytest.param(
            "import cdi.generate, cdi.driverfiles, cdi.write, cdi.encode", set(), id="generate-path"
        ),
        pytest.param("import cdi.cli", {"argparse"}, id="cli"),
    ],
)
def test_light_imports(imports: str, allowed: set[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK.format(imports=imports)],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(filter(None, result.stdout.strip().split(",")))
    assert loaded <= allowed


def test_console_script_when_installed() -> None:
    """`nvidia-cdi` is the distribution's console script for `cdi.__main__:main`."""
    from importlib import metadata

    try:
        dist = metadata.distribution("gpu-node-toolkit")
    except metadata.PackageNotFoundError:
        pytest.skip("the project is not installed in this environment (pip install .)")
    scripts = {e.name: e.value for e in dist.entry_points if e.group == "console_scripts"}
    assert scripts.get("nvidia-cdi") == "cdi.__main__:main"
