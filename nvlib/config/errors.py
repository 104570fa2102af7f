"""The one error type of the config layer.

A `ConfigError` carries the field it is about (`path`), the offending `value` and the
`reason`, so a caller can log or test them apart from the text. The text (`str(err)`)
is upstream's exact wording wherever upstream has one, because users grep logs for
those lines; otherwise it reads `<path>: <reason> (got <value>)` (docs/config.md).
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A bad flag, environment variable or config-file value, or an unreadable file."""

    path: str
    value: object
    reason: str
    message: str

    def __init__(
        self, path: str, value: object, reason: str, *, message: str | None = None
    ) -> None:
        text = message if message is not None else f"{path}: {reason} (got {value!r})"
        super().__init__(text)
        self.path, self.value, self.reason, self.message = path, value, reason, text

    @classmethod
    def upstream(cls, path: str, value: object, text: str) -> ConfigError:
        """An error whose whole text is upstream's own wording, kept word for word."""
        return cls(path, value, text, message=text)

    # The config file the fault is in, when it is in one (set by parse_config_file).
    file: str | None = None

    def wrapped(self, prefix: str) -> ConfigError:
        """The same fault with `prefix: ` in front of its text, as Go's `%v` wrapping reads.

        The caller raises the result `from` this error, so the chain stays intact.
        """
        wrapped = ConfigError(
            self.path, self.value, self.reason, message=f"{prefix}: {self.message}"
        )
        wrapped.file = self.file
        return wrapped

    def located(self) -> str:
        """The text, then where the fault is when it is in a config file: upstream's chain
        names neither the file nor the field. `... must be >= 2 (in config file
        /etc/gfd/config.yaml, at sharing.timeSlicing.resources[0].replicas = -4)`; a YAML
        error's text already gives the line, a read error's the file."""
        if not self.file:
            return self.message
        at = "" if self.path in ("config", self.file) else f", at {self.path} = {self.value!r}"
        return f"{self.message} (in config file {self.file}{at})"

    def __str__(self) -> str:
        return self.message
