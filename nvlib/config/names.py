"""Resource names and device references as the v1 config accepts them.

Both follow upstream's api/config/v1 word for word (docs/config.md#reading-the-file): a
name gets the `nvidia.com/` prefix when it lacks one and must then pass Kubernetes'
DNS-1123 subdomain check; a device reference is a GPU index, a MIG index or a GPU/MIG
UUID.
"""

from __future__ import annotations

import re

from nvlib.config.envparse import parse_uint

RESOURCE_PREFIX = "nvidia.com"
MAX_RESOURCE_NAME_LENGTH = 63
SHARED_SUFFIX = ".shared"

# k8s.io/apimachinery validation.IsDNS1123Subdomain, message and regex as it prints them.
_DNS1123_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_DNS1123_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters,"
    " '-' or '.', and must start and end with an alphanumeric character"
    f" (e.g. 'example.com', regex used for validation is '{_DNS1123_FMT}')"
)
_DNS1123_MAX = 253


def qualify_resource_name(raw: str) -> str:
    """`nvidia.com/<raw>` unless already prefixed; ValueError with upstream's text if bad."""
    name = raw if raw.startswith(RESOURCE_PREFIX + "/") else f"{RESOURCE_PREFIX}/{raw}"
    if len(name) > MAX_RESOURCE_NAME_LENGTH:
        raise ValueError(
            f"fully-qualified resource name must be {MAX_RESOURCE_NAME_LENGTH}"
            f" characters or less: {name}"
        )
    local = name.split("/", 1)[1]
    problems = []
    if len(local) > _DNS1123_MAX:
        problems.append(f"must be no more than {_DNS1123_MAX} characters")
    # re compiles on first use and caches: most configs never get here
    if not re.fullmatch(_DNS1123_FMT, local):
        problems.append(_DNS1123_MSG)
    if problems:
        # Go prints the []string of messages with %v: "[msg1 msg2]".
        raise ValueError(f"incorrect format for resource name '{name}': [{' '.join(problems)}]")
    return name


# Label namespaces nfd-master accepts without -extra-label-ns although they lie under
# kubernetes.io (node-feature-discovery's namespace policy), and the ones it denies.
_NFD_KUBERNETES_NAMESPACES = ("feature.node.kubernetes.io", "profile.node.kubernetes.io")
_DNS_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")


def _is_dns_subdomain(text: str) -> bool:
    """IsDNS1123Subdomain without a regular expression (GFD parses this at every start)."""
    if not text or len(text) > _DNS1123_MAX:
        return False
    for part in text.split("."):
        if not part or part[0] == "-" or part[-1] == "-" or not _DNS_LABEL_CHARS.issuperset(part):
            return False
    return True


def label_namespace_problem(namespace: str) -> str | None:
    """Why nfd-master would drop labels in `namespace` (the part of a key before `/`).

    None when it accepts them: any DNS subdomain outside the `kubernetes.io` family, and
    in that family only `feature.node.kubernetes.io`, `profile.node.kubernetes.io` and
    their sub-namespaces.
    """
    if not _is_dns_subdomain(namespace):
        return "not a DNS subdomain (lower-case letters, digits, '-' and '.')"
    if namespace == "kubernetes.io" or namespace.endswith(".kubernetes.io"):
        if not any(
            namespace == allowed or namespace.endswith("." + allowed)
            for allowed in _NFD_KUBERNETES_NAMESPACES
        ):
            return (
                "NFD denies the kubernetes.io namespaces other than feature.node and profile.node"
            )
    return None


def shared_rename(name: str) -> str:
    """The name a shared resource is advertised under with `renameByDefault: true`."""
    return name + SHARED_SUFFIX


def _is_uint(text: str) -> bool:
    try:
        parse_uint(text)
    except ValueError:
        return False
    return True


_HEX = frozenset("0123456789abcdefABCDEF")
_DASHES = (8, 13, 18, 23)


def _is_uuid(text: str) -> bool:
    """github.com/google/uuid.Parse: plain, {braced}, urn:uuid: or 32 bare hex digits."""
    raw = text.encode("utf-8", "surrogateescape")
    if len(raw) == 32:
        return all(chr(b) in _HEX for b in raw)
    if len(raw) == 36 + 9:
        if raw[:9].lower() != b"urn:uuid:":
            return False
        raw = raw[9:]
    elif len(raw) == 36 + 2:
        raw = raw[1:37]  # google/uuid drops the first byte and never looks at the last
    elif len(raw) != 36:
        return False
    if any(raw[i] != ord("-") for i in _DASHES):
        return False
    return all(chr(b) in _HEX for i, b in enumerate(raw[:36]) if i not in _DASHES)


def is_gpu_uuid(ref: str) -> bool:
    return ref.startswith("GPU-") and _is_uuid(ref[4:])


def is_mig_uuid(ref: str) -> bool:
    """`MIG-<uuid>`, or the older `MIG-GPU-<uuid>/<gi>/<ci>`."""
    if not ref.startswith("MIG-"):
        return False
    suffix = ref[4:]
    if _is_uuid(suffix):
        return True
    parts = suffix.split("/", 2)
    return len(parts) == 3 and is_gpu_uuid(parts[0]) and all(_is_uint(p) for p in parts[1:])


def is_device_ref(ref: str) -> bool:
    """A `devices` list entry: GPU index `0`, MIG index `0:1`, or a GPU/MIG UUID."""
    if _is_uint(ref):
        return True
    parts = ref.split(":", 1)
    if len(parts) == 2 and all(_is_uint(p) for p in parts):
        return True
    return is_gpu_uuid(ref) or is_mig_uuid(ref)
