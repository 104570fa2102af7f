"""CDI specs for NVIDIA GPUs: generate, write, load and validate them (docs/cdi.md).

The command is `nvidia-cdi generate / list / validate / transform root` (`python -m
cdi`). The same steps are a library for the device plugin (docs/deviceplugin.md#allocate):

    import cdi
    from nvlib.discover import discover

    machine = discover()                                  # NVML, real or simulated
    files = cdi.find_driver_files(machine, driver_root="/", dev_root="/")
    options = cdi.GenerateOptions(
        hook_path=cdi.find_hook_path("/usr/bin/nvidia-cdi-hook"),
        full_gpus_for_mig_enabled=True,  # mig-strategy none: MIG-enabled GPUs whole too
        no_all_device=True,
    )
    spec = cdi.generate_spec(machine, files, options)    # pure: same inputs, same spec
    registry = cdi.load_specs(["/etc/cdi", "/var/run/cdi"])
    missing = [n for n in wanted if not registry.defines(n)]
    spec = cdi.select_devices(spec, [cdi.parse_qualified_name(n)[2] for n in missing])
    cdi.write_spec(spec, "/var/run/cdi/nvidia-device-plugin.yaml")  # atomic, 0644

Names are built only with `cdi.names` (`gpu_name(gpu, "uuid")` -> `nvidia.com/gpu=GPU-...`,
`gpu_name(gpu, "index")` -> `nvidia.com/gpu=0`, `mig_name(gpu, mig, "index")` ->
`nvidia.com/gpu=0:1`, `imex_channel_name(3)`), so Allocate answers and specs agree.

Public API (imported lazily, so `import cdi` stays cheap):

- `find_driver_files(machine, driver_root, dev_root, *, host_root, library_search_paths,
  config_search_paths, placeholder_nodes, ...) -> DriverFiles`: the only host walk.
- `find_hook_path(value=None) -> str`: `--nvidia-cdi-hook-path` resolution.
- `feature_options(flags) -> FeatureOptions`: what feature flags change, for
  `find_driver_files` (`explicit_libraries`, `ipc_sockets`) and `GenerateOptions`
  (`no_additional_gids`).
- `generate_spec(machine, driver_files, options=GenerateOptions()) -> Spec`: pure.
- `select_devices(spec, names) -> Spec`: keep the named devices, lowest version again.
- `write_spec(spec, path, fmt=None) -> bool`: validate, then write atomically (`-`:
  stdout); False when the file already held these bytes.
- `transform_root(spec, from_, to, relative_to="host") -> Spec`: pure; the spec's host
  (or container) paths moved from one root to another (`transform root`).
- `name_host_roots(spec, moves) -> Spec`: pure; a spec generated from roots mounted in
  a container, naming the host's roots as if generated there.
- `spec_bytes(spec, fmt="yaml") -> bytes`, `to_yaml`, `to_json`: deterministic bytes.
- `load_specs(dirs) -> Registry`: devices the spec dirs define, with CDI's precedence;
  `Registry.defines(qualified_name)`, `.devices`, `.errors`.
- `read_spec(path)`, `parse_spec(data)`, `validate_spec(spec) -> list[SpecError]`.
- `minimum_version(spec) -> str`; errors `CdiError`, `SpecError`, `SpecErrors`,
  `GenerateError`, `DriverFilesError`.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # loaded on first use by __getattr__ below
    from cdi.driverfiles import DriverFiles, find_driver_files, find_hook_path
    from cdi.encode import to_json, to_yaml
    from cdi.errors import CdiError, DriverFilesError, GenerateError, SpecError, SpecErrors
    from cdi.features import FeatureOptions, feature_options
    from cdi.generate import GenerateOptions, generate_spec, select_devices
    from cdi.load import parse_spec, read_spec
    from cdi.names import (
        gpu_name,
        imex_channel_name,
        mig_name,
        parse_qualified_name,
        qualified_name,
    )
    from cdi.registry import Registry, load_specs
    from cdi.spec import Spec
    from cdi.transform import transform_root
    from cdi.validate import validate as validate_spec
    from cdi.version import minimum_version
    from cdi.write import spec_bytes, write_spec

_EXPORTS = {
    "DriverFiles": "cdi.driverfiles",
    "find_driver_files": "cdi.driverfiles",
    "find_hook_path": "cdi.driverfiles",
    "to_json": "cdi.encode",
    "to_yaml": "cdi.encode",
    "CdiError": "cdi.errors",
    "DriverFilesError": "cdi.errors",
    "GenerateError": "cdi.errors",
    "SpecError": "cdi.errors",
    "SpecErrors": "cdi.errors",
    "FeatureOptions": "cdi.features",
    "feature_options": "cdi.features",
    "GenerateOptions": "cdi.generate",
    "generate_spec": "cdi.generate",
    "select_devices": "cdi.generate",
    "parse_spec": "cdi.load",
    "read_spec": "cdi.load",
    "gpu_name": "cdi.names",
    "imex_channel_name": "cdi.names",
    "mig_name": "cdi.names",
    "parse_qualified_name": "cdi.names",
    "qualified_name": "cdi.names",
    "Registry": "cdi.registry",
    "load_specs": "cdi.registry",
    "Spec": "cdi.spec",
    "name_host_roots": "cdi.transform",
    "transform_root": "cdi.transform",
    "validate_spec": "cdi.validate",
    "minimum_version": "cdi.version",
    "spec_bytes": "cdi.write",
    "write_spec": "cdi.write",
}

__all__ = [
    "CdiError",
    "DriverFiles",
    "DriverFilesError",
    "FeatureOptions",
    "GenerateError",
    "GenerateOptions",
    "Registry",
    "Spec",
    "SpecError",
    "SpecErrors",
    "feature_options",
    "find_driver_files",
    "find_hook_path",
    "generate_spec",
    "gpu_name",
    "imex_channel_name",
    "load_specs",
    "mig_name",
    "minimum_version",
    "name_host_roots",
    "parse_qualified_name",
    "parse_spec",
    "qualified_name",
    "read_spec",
    "select_devices",
    "spec_bytes",
    "to_json",
    "to_yaml",
    "transform_root",
    "validate_spec",
    "write_spec",
]


_ALIASES = {"validate_spec": "validate"}  # `cdi.validate` is the submodule
_SUBMODULES = frozenset(
    {"driverfiles", "encode", "errors", "features", "generate", "load", "names", "registry"}
    | {"spec", "transform", "validate", "version", "write"}
)


def import_module(name: str) -> Any:
    """importlib.import_module for an absolute name, without importing importlib (and
    warnings with it, ~0.7 ms) on the command's start."""
    __import__(name)
    return sys.modules[name]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:  # `cdi.names.gpu_name(...)` after a bare `import cdi`
        return import_module(f"cdi.{name}")
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'cdi' has no attribute {name!r}")
    value = getattr(import_module(module), _ALIASES.get(name, name))
    globals()[name] = value
    return value
