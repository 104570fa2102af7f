"""Build the project's container image offline: `python tools/build_image.py [--tag T]`.

No container registry has to be reachable. The steps:

1. The base: unless `--base IMAGE` names one podman already has, a Debian image is made
   from Debian packages with mmdebstrap (minbase + python3, the suite and the apt
   sources of this machine) and imported as `localhost/gpu-node-toolkit-base:<suite>`;
   an existing one is reused unless `--rebuild-base`.
2. The wheels: this project's wheel built here, and every dependency's wheel for the
   base's Python version (asked of the base itself), plus pip's own wheel, which the
   Containerfile runs to install without leaving an installer in the image.
3. `podman build --network=none` of deployments/container/Containerfile over a context
   holding those wheels, LICENSE and NOTICE.

Prints the image reference, its size and the share of it above the base. `--save FILE`
also writes the image as an OCI archive (`podman load -i FILE`, `ctr images import FILE`).
`--podman CMD` (env `PODMAN`) runs another podman command, e.g. a wrapper that gives
podman its own storage, as the image tests do.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONTAINERFILE = REPO / "deployments" / "container" / "Containerfile"
# What podman calls a local image, and the chart's default image.repository: an image
# imported into containerd (`ctr images import`) keeps this name, so it needs no retag.
NAME = "localhost/gpu-node-toolkit"
BASE_NAME = f"{NAME}-base"
# Left out of the Debian base: what no command here reads. Copyright files stay.
DPKG_EXCLUDES = ("/usr/share/man/*", "/usr/share/doc/*", "/usr/share/locale/*", "/usr/share/info/*")


class BuildError(RuntimeError):
    pass


@dataclass(frozen=True)
class Options:
    tag: str
    base: str | None
    rebuild_base: bool
    suite: str
    save: Path | None
    podman: list[str]


def project_version() -> str:
    """nvlib's __version__, read without importing the package (the tool runs from a checkout)."""
    text = (REPO / "nvlib" / "__init__.py").read_text()
    match = re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE)
    if match is None:
        raise BuildError("nvlib/__init__.py has no __version__ line")
    return match.group(1)


def default_tag() -> str:
    """The image this builds by default: the one the chart's default values name."""
    return f"{NAME}:{project_version()}"


def host_suite(os_release: Path = Path("/etc/os-release")) -> str:
    """This machine's Debian codename: the base follows the apt sources it has."""
    for line in os_release.read_text().splitlines():
        key, _, value = line.partition("=")
        if key == "VERSION_CODENAME" and value.strip('"'):
            return value.strip('"')
    raise BuildError(f"{os_release} names no VERSION_CODENAME: pass --suite")


def apt_sources(etc_apt: Path = Path("/etc/apt")) -> list[Path]:
    """The host's enabled apt source files, which mmdebstrap pastes into the base.

    Reusing them means the base comes from wherever this machine's packages come from,
    and the tool names no mirror of its own.
    """
    found = []
    legacy = etc_apt / "sources.list"
    if legacy.is_file() and legacy.read_text().strip():
        found.append(legacy)
    parts = etc_apt / "sources.list.d"
    if parts.is_dir():
        found += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    if not found:
        raise BuildError(f"no apt sources in {etc_apt}: mmdebstrap has nowhere to take packages")
    return found


def mmdebstrap_command(suite: str, sources: list[Path], tarball: Path) -> list[str]:
    excludes = [f"--dpkgopt=path-exclude={pattern}" for pattern in DPKG_EXCLUDES]
    return [
        "mmdebstrap",
        "--variant=minbase",
        "--include=python3",
        *excludes,
        "--dpkgopt=path-include=/usr/share/doc/*/copyright",
        "--format=tar",
        suite,
        str(tarball),
        *(str(source) for source in sources),
    ]


def build_command(opts: Options, base: str, context: Path, version: str) -> list[str]:
    return [
        *opts.podman,
        "build",
        "--network=none",
        "--pull=never",
        "--file",
        str(CONTAINERFILE),
        "--build-arg",
        f"BASE={base}",
        "--build-arg",
        f"VERSION={version}",
        "--build-arg",
        f"REVISION={git_output('rev-parse', 'HEAD')}",
        "--build-arg",
        f"SOURCE={git_output('config', '--get', 'remote.origin.url')}",
        "--tag",
        opts.tag,
        str(context),
    ]


def git_output(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True)
    return done.stdout.strip() or "unknown"


def run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
    print("+", shlex.join(command), file=sys.stderr, flush=True)
    done = subprocess.run(command, text=True, **kwargs)  # type: ignore[call-overload]
    if done.returncode != 0:
        raise BuildError(f"{command[0]} exited {done.returncode}: {shlex.join(command)}")
    return done


def has_image(opts: Options, ref: str) -> bool:
    done = subprocess.run([*opts.podman, "image", "exists", ref], capture_output=True)
    return done.returncode == 0


def make_base(opts: Options, scratch: Path) -> str:
    ref = f"{BASE_NAME}:{opts.suite}"
    if has_image(opts, ref) and not opts.rebuild_base:
        print(f"reusing the base {ref} (--rebuild-base makes it anew)", file=sys.stderr)
        return ref
    tarball = scratch / "base.tar"
    run(mmdebstrap_command(opts.suite, apt_sources(), tarball))
    run([*opts.podman, "import", str(tarball), ref], stdout=subprocess.DEVNULL)
    return ref


def base_python(opts: Options, base: str) -> str:
    script = "import sys; print('%d.%d' % sys.version_info[:2])"
    done = run(
        [*opts.podman, "run", "--rm", "--network=none", base, "python3", "-c", script],
        capture_output=True,
    )
    return done.stdout.strip()


def make_wheels(python_version: str, wheels: Path) -> None:
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(wheels), str(REPO)])
    (project_wheel,) = wheels.glob("gpu_node_toolkit-*.whl")
    # Binary wheels for the base's Python (the platform is this machine's), so nothing
    # compiles inside the build and it needs no network.
    run(
        [
            *pip,
            "download",
            "--quiet",
            "--only-binary=:all:",
            "--python-version",
            python_version,
            "--dest",
            str(wheels),
            str(project_wheel),
            "pip",
        ]
    )


def make_context(python_version: str, context: Path) -> None:
    wheels = context / "wheels"
    wheels.mkdir(parents=True)
    make_wheels(python_version, wheels)
    for name in ("LICENSE", "NOTICE"):
        (context / name).write_bytes((REPO / name).read_bytes())


def image_size(opts: Options, ref: str) -> int:
    done = run([*opts.podman, "image", "inspect", ref], capture_output=True)
    return int(json.loads(done.stdout)[0]["Size"])


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def build(opts: Options) -> str:
    version = project_version()
    with tempfile.TemporaryDirectory(prefix="build-image-") as tmp:
        scratch = Path(tmp)
        base = opts.base or make_base(opts, scratch)
        if not has_image(opts, base):
            raise BuildError(f"--base {base}: podman has no such image (podman pull it first)")
        context = scratch / "context"
        make_context(base_python(opts, base), context)
        run(build_command(opts, base, context, version))
    if opts.save is not None:
        opts.save.unlink(missing_ok=True)
        run([*opts.podman, "save", "--format", "oci-archive", "--output", str(opts.save), opts.tag])
    size, base_size = image_size(opts, opts.tag), image_size(opts, base)
    print(
        f"{opts.tag} {megabytes(size)} (project layers {megabytes(size - base_size)}, "
        f"base {base} {megabytes(base_size)})"
    )
    return opts.tag


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tag", default=default_tag(), help="default: %(default)s")
    parser.add_argument("--base", help="an image podman has, instead of the Debian base")
    parser.add_argument("--rebuild-base", action="store_true", help="make the Debian base anew")
    parser.add_argument("--suite", help="Debian suite of the base (default: this machine's)")
    parser.add_argument("--save", type=Path, help="also write the image as an OCI archive")
    parser.add_argument(
        "--podman", default=os.environ.get("PODMAN", "podman"), help="podman command line"
    )
    args = parser.parse_args(argv)
    suite = args.suite or (host_suite() if args.base is None else "")
    return Options(
        tag=args.tag,
        base=args.base,
        rebuild_base=args.rebuild_base,
        suite=suite,
        save=args.save,
        podman=shlex.split(args.podman),
    )


def main(argv: list[str] | None = None) -> int:
    try:
        build(parse(sys.argv[1:] if argv is None else argv))
    except BuildError as err:
        print(f"build_image: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
