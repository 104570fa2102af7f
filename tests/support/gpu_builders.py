"""Builders for hand-made `Machine` models, so pure labelers are tested without NVML."""

from __future__ import annotations

from nvlib.config import Config, normalise, parse_config_file
from nvlib.model import Fabric, Gpu, Machine, MigDevice, VGpuInfo

A100 = "NVIDIA A100-SXM4-40GB"
NO_VGPU = VGpuInfo()
A100_BYTES = 40960 * 1024 * 1024

# A100-40GB GI profiles as NVML reports them: memory, SMs, CE, dec, enc, jpeg, ofa, G slices.
_A100_MIG = {
    "1g.5gb": (4864, 14, 1, 0, 0, 0, 0, 1),
    "1g.5gb+me": (4864, 14, 1, 1, 0, 1, 1, 1),
    "1g.10gb": (9856, 14, 1, 1, 0, 0, 0, 1),
    "2g.10gb": (9856, 28, 2, 1, 0, 0, 0, 2),
    "3g.20gb": (19968, 42, 3, 2, 0, 0, 0, 3),
    "4g.20gb": (19968, 56, 4, 2, 0, 0, 0, 4),
    "7g.40gb": (40192, 98, 7, 5, 0, 1, 1, 7),
}


def mig(profile: str, index: int = 0, parent: int = 0) -> MigDevice:
    memory, sms, ce, dec, enc, jpeg, ofa, slices = _A100_MIG[profile]
    return MigDevice(
        index=index,
        uuid=f"MIG-{parent:08x}-0000-0000-0000-{index:012x}",
        gi_id=index,
        ci_id=0,
        profile=profile,
        memory_mib=memory,
        multiprocessors=sms,
        gi_slices=slices,
        ci_slices=slices,
        copy_engines=ce,
        decoders=dec,
        encoders=enc,
        jpegs=jpeg,
        ofas=ofa,
    )


def gpu(
    index: int = 0,
    name: str = A100,
    memory_bytes: int | None = A100_BYTES,
    cc: tuple[int, int] = (8, 0),
    mig_capable: bool = True,
    migs: tuple[str, ...] | None = None,
    pci_class: str | None = "0x030200",
    fabric: Fabric | None = None,
) -> Gpu:
    """A GPU; `migs` given (even empty) means MIG is enabled with those profiles."""
    return Gpu(
        index=index,
        uuid=f"GPU-{index:08x}-1111-2222-3333-444444444444",
        name=name,
        memory_total_bytes=memory_bytes,
        compute_major=cc[0],
        compute_minor=cc[1],
        minor=index,
        pci_bus_id=f"00000000:{index + 7:02X}:00.0",
        mig_capable=mig_capable,
        mig_enabled=migs is not None,
        mig_devices=tuple(mig(p, j, index) for j, p in enumerate(migs or ())),
        fabric=fabric,
        pci_class=pci_class,
    )


def machine(
    *gpus: Gpu,
    driver: str = "550.54.15",
    cuda: int = 12040,
    machine_type: str | None = "DGXA100 920-23687-2530-000",
    vgpu: VGpuInfo | None = NO_VGPU,
) -> Machine:
    return Machine(driver, cuda, tuple(gpus), machine_type, vgpu)


def dgx_a100(**changes: object) -> Machine:
    return machine(*(gpu(i) for i in range(8)), **changes)  # type: ignore[arg-type]


def with_migs(m: Machine, *profiles: str) -> Machine:
    return m._replace(gpus=tuple(gpu(g.index, g.name, migs=profiles) for g in m.gpus))


def config(text: str = "", mig_strategy: str | None = None) -> Config:
    """A normalised v1 config from YAML text, as GFD loads it from a file."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(text or "version: v1\n")
        loaded = parse_config_file(str(path))
    normalise(loaded)
    if mig_strategy is not None:
        loaded.flags.mig_strategy = mig_strategy
    return loaded
