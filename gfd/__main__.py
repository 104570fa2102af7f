"""`gpu-feature-discovery` / `python -m gfd`: label this node (docs/labels.md)."""

from __future__ import annotations

import logging
import os
import sys

from gfd.cli import parse
from gfd.daemon import run
from nvlib import __version__, logs
from nvlib.config import ConfigError
from nvlib.signals import Signals

log = logging.getLogger("gfd")


def main(argv: list[str] | None = None) -> int:
    logs.configure()  # standard error only: standard output is the product
    args = sys.argv[1:] if argv is None else argv
    environ = dict(os.environ)
    try:
        settings = parse(args, environ)
    except ConfigError as err:
        log.error("%s", err.located())
        return 1
    if settings.show_version:
        print(f"gpu-feature-discovery {__version__}")
        return 0
    signals = Signals()
    signals.install()
    log.info("Starting GPU Feature Discovery %s", __version__)
    return run(args, environ, settings, signals)


if __name__ == "__main__":
    sys.exit(main())
