"""One log format for every command: to standard error, which carries nothing else.

Standard output is each command's product (label lines, a spec written with
`--output -`), so it can be piped; logs never go there (docs/architecture.md).
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(message)s"


def configure() -> None:
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format=FORMAT)
