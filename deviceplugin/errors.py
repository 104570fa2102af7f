"""The plugin's two error kinds, each carrying upstream's exact text.

A `PluginError` stops a start of the plugins (the daemon logs it and exits, or retries,
as upstream does); a `RequestError` answers one kubelet RPC with status UNKNOWN and the
text as details, which is what a plain Go error yields.
"""

from __future__ import annotations


class PluginError(RuntimeError):
    """Building or starting the plugins failed; `str()` is upstream's message chain."""

    def wrapped(self, prefix: str) -> PluginError:
        """The same failure with `prefix: ` in front, as Go's `%v` wrapping reads."""
        return type(self)(f"{prefix}: {self}")


class RequestError(ValueError):
    """A kubelet request the plugin refuses; `str()` goes back as the gRPC details."""
