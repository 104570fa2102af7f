"""Which XIDs make a GPU unhealthy: DP_DISABLE_HEALTHCHECKS / DP_ENABLE_HEALTHCHECKS.

Upstream's table (docs/deviceplugin.md#health) kept as a map like upstream's, so the
start-up log line reads the same: XID -> disabled, with the key 0 standing for "all
XIDs". One deliberate difference: `DP_DISABLE_HEALTHCHECKS=all` with an enable list still
checks the listed XIDs, which is what upstream's comment promises and its code does not.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import NamedTuple

from nvlib.config.envparse import parse_uint

log = logging.getLogger(__name__)

DISABLE_VAR = "DP_DISABLE_HEALTHCHECKS"
ENABLE_VAR = "DP_ENABLE_HEALTHCHECKS"
ALL_XIDS = 0  # the map key that stands for every XID
# Application errors: the GPU itself is still healthy (upstream's hard-coded list).
DEFAULT_IGNORED = (13, 31, 43, 45, 68, 109)


def _parse_list(raw: str) -> dict[int, bool]:
    """One variable: a comma list; `all` or `xids` anywhere means every XID."""
    found: dict[int, bool] = {}
    for entry in raw.lower().split(","):
        item = entry.strip()
        if item in ("all", "xids"):
            return {ALL_XIDS: True}
        if not item:
            continue
        try:
            found[parse_uint(item)] = True
        except ValueError as err:
            log.info("Ignoring malformed Xid value %s: %s", item, err)
    return found


class XidPolicy(NamedTuple):
    """XID -> disabled; a missing XID is checked unless every XID is disabled."""

    disabled: Mapping[int, bool]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> XidPolicy:
        disabled = _parse_list(environ.get(DISABLE_VAR, ""))
        for xid in DEFAULT_IGNORED:
            disabled[xid] = True
        for xid in _parse_list(environ.get(ENABLE_VAR, "")):
            disabled[xid] = False  # an explicit enable beats every disable
        return cls(disabled)

    @property
    def all_disabled(self) -> bool:
        return self.disabled.get(ALL_XIDS, False)

    @property
    def checks_off(self) -> bool:
        """No XID can mark a device: skip health checking altogether."""
        return self.all_disabled and not any(v is False for v in self.disabled.values())

    def ignores(self, xid: int) -> bool:
        if self.disabled.get(ALL_XIDS) is False:  # DP_ENABLE_HEALTHCHECKS=all
            return False
        if xid in self.disabled:
            return self.disabled[xid]
        return self.all_disabled

    def __str__(self) -> str:
        """Go's `%v` of the map: `map[13:true 31:true ...]`, keys in order."""
        items = " ".join(f"{k}:{str(v).lower()}" for k, v in sorted(self.disabled.items()))
        return f"map[{items}]"
