"""Session-wide: no test writes bytecode into the source tree.

The packages are installed editable, so this process and every `python -m ...` or
`python -c ...` a test starts import them from the checkout; without this they would
leave `__pycache__` in the repository's package directories. Subprocesses started with
a copy of `os.environ` inherit the variable; those given a bare environment set it
themselves (tests/test_no_bytecode.py checks that they do).
"""

from __future__ import annotations

import os
import sys

sys.dont_write_bytecode = True
os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
