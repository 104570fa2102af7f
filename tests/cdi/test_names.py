"""CDI name rules and builders: one table per rule (the CDI library's, nvidia-ctk's strategies).

Matrix: vendor / class / device-name validity with the CDI library's messages, the
project's 1-character qualifier rule, qualified-name parsing, and the device names of
full GPUs and MIG devices under each strategy, as the plugin builds them.
"""

from __future__ import annotations

import gpu_builders as gb
import pytest

from cdi import names


@pytest.mark.parametrize(
    ("vendor", "error"),
    [
        pytest.param("nvidia.com", None, id="dns-name"),
        pytest.param("a_b-c.d9", None, id="all-allowed-characters"),
        pytest.param("", "invalid vendor. empty name", id="empty"),
        pytest.param("9vendor", 'invalid vendor. "9vendor", should start with letter', id="digit"),
        pytest.param(
            "nv/idia", "invalid vendor. invalid character '/' in name \"nv/idia\"", id="slash"
        ),
        pytest.param(
            "nvidia.", 'invalid vendor. "nvidia.", should end with a letter or digit', id="dot-end"
        ),
        pytest.param(
            "nvídia", "invalid vendor. invalid character 'í' in name \"nvídia\"", id="utf8"
        ),
    ],
)
def test_vendor_rules(vendor: str, error: str | None) -> None:
    assert names.vendor_error(vendor) == error


@pytest.mark.parametrize(
    ("device_class", "error"),
    [
        pytest.param("gpu", None, id="gpu"),
        pytest.param("gpu.mig", None, id="dot-allowed-since-0.6"),
        pytest.param("imex-channel", None, id="dash"),
        pytest.param("-gpu", 'invalid class. "-gpu", should start with letter', id="dash-start"),
        pytest.param("gpu=x", "invalid class. invalid character '=' in name \"gpu=x\"", id="eq"),
    ],
)
def test_class_rules(device_class: str, error: str | None) -> None:
    assert names.class_error(device_class) == error


@pytest.mark.parametrize(
    ("vendor", "device_class", "bad"),
    [
        pytest.param("n", "gpu", True, id="one-char-vendor-panics-cdi-0.5"),
        pytest.param("nvidia.com", "g", True, id="one-char-class-panics-cdi-0.5"),
        pytest.param("nv", "gp", False, id="two-chars-fine"),
    ],
)
def test_one_character_qualifier_refused(vendor: str, device_class: str, bad: bool) -> None:
    assert (names.short_qualifier_error(vendor, device_class) is not None) is bad


@pytest.mark.parametrize(
    ("name", "error"),
    [
        pytest.param("0", None, id="index"),
        pytest.param("0:1", None, id="mig-index"),
        pytest.param("GPU-0008bcf4-cae8-0120-a18f-bc344fb1c710", None, id="uuid"),
        pytest.param("mig1:2", None, id="type-index"),
        pytest.param("a_b.c-d:e", None, id="all-allowed"),
        pytest.param("", "invalid (empty) device name", id="empty"),
        pytest.param(
            "-0", 'invalid class "-0", should start with a letter or digit', id="dash-start-quirk"
        ),
        pytest.param("0:", 'invalid name "0:", should end with a letter or digit', id="colon-end"),
        pytest.param("a b", "invalid character ' ' in device name \"a b\"", id="space"),
        pytest.param("a/b", "invalid character '/' in device name \"a/b\"", id="slash"),
    ],
)
def test_device_name_rules(name: str, error: str | None) -> None:
    assert names.device_name_error(name) == error


def test_names_checked_character_by_character() -> None:
    """The one-set-test path for valid names agrees with the library's per-character
    loop (a reference copy here) on every edge: non-ASCII letters and digits too."""

    def alnum(c: str) -> bool:
        return c.isascii() and c.isalnum()

    def device_reference(name: str) -> bool:
        inner = all(alnum(c) or c in "_-.:" for c in name[1:-1])
        return alnum(name[0]) and (len(name) == 1 or (inner and alnum(name[-1])))

    def qualifier_reference(name: str) -> bool:
        inner = all(alnum(c) or c in "_-." for c in name[1:-1])
        return name[0].isascii() and name[0].isalpha() and inner and alnum(name[-1])

    samples = ["a", "ab", "a:b", "a.b", "a_b", "a-b", "a:", "a.", "aé", "éa", "aéb",
               "a²b", "a٣b", "a b", "a/b", "GPU-0008bcf4-cae8", "MIG-1", "0:1", "9",
               "a\tb", "aZ9"]  # fmt: skip
    for name in samples:
        assert (names.device_name_error(name) is None) == device_reference(name), name
        assert (names.vendor_error(name) is None) == qualifier_reference(name), name


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        pytest.param("nvidia.com/gpu=0", ("nvidia.com", "gpu", "0"), id="index"),
        pytest.param("nvidia.com/gpu=0:1", ("nvidia.com", "gpu", "0:1"), id="mig"),
        pytest.param("nvidia.com/gpu=GPU-1", ("nvidia.com", "gpu", "GPU-1"), id="uuid"),
    ],
)
def test_parse_qualified_name(text: str, parsed: tuple[str, str, str]) -> None:
    assert names.parse_qualified_name(text) == parsed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "/dev/nvidia0", 'unqualified device "/dev/nvidia0", missing vendor', id="path"
        ),
        pytest.param("gpu=0", 'unqualified device "gpu=0", missing vendor', id="no-vendor"),
        pytest.param(
            "nvidia.com/gpu", 'unqualified device "nvidia.com/gpu", missing vendor', id="no-name"
        ),
        pytest.param(
            "nvidia.com/gpu=",
            'unqualified device "nvidia.com/gpu=", missing vendor',
            id="empty-name",
        ),
        pytest.param(
            "v.com/a/b=x",
            'invalid device "v.com/a/b=x": invalid class. invalid character \'/\' in name "a/b"',
            id="class-takes-rest",
        ),
        pytest.param(
            "a.b/c=d=e",
            'invalid device "a.b/c=d=e": invalid character \'=\' in device name "d=e"',
            id="split-at-first-eq",
        ),
    ],
)
def test_parse_unqualified(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        names.parse_qualified_name(text)
    assert str(err.value) == message


GPU = gb.gpu(3, migs=("1g.5gb", "2g.10gb"))


@pytest.mark.parametrize(
    ("strategy", "gpu_name", "mig_name"),
    [
        pytest.param("index", "3", "3:1", id="index"),
        pytest.param("uuid", GPU.uuid, GPU.mig_devices[1].uuid, id="uuid"),
        pytest.param("type-index", "gpu3", "mig3:1", id="type-index"),
    ],
)
def test_device_names(strategy: str, gpu_name: str, mig_name: str) -> None:
    assert names.gpu_device_name(GPU, strategy) == gpu_name
    assert names.mig_device_name(GPU, GPU.mig_devices[1], strategy) == mig_name


@pytest.mark.parametrize(
    ("strategy", "gpu_name", "mig_name"),
    [
        pytest.param(
            "uuid",
            f"nvidia.com/gpu={GPU.uuid}",
            f"nvidia.com/gpu={GPU.mig_devices[0].uuid}",
            id="uuid",
        ),
        pytest.param("index", "nvidia.com/gpu=3", "nvidia.com/gpu=3:0", id="index"),
    ],
)
def test_plugin_names(strategy: str, gpu_name: str, mig_name: str) -> None:
    """What Allocate hands out, built by the same code as the spec (docs/deviceplugin.md)."""
    assert names.gpu_name(GPU, strategy) == gpu_name
    assert names.mig_name(GPU, GPU.mig_devices[0], strategy) == mig_name
    assert names.imex_channel_name(7) == "nvidia.com/imex-channel=7"


def test_plugin_names_reject_type_index() -> None:
    with pytest.raises(ValueError, match="invalid device id strategy: type-index"):
        names.gpu_name(GPU, "type-index")
