"""Loading asyncorm's optional C extensions (``_orm/_speedups.c``, ``_dialects/_speedups.c``).

Each stands in for Python code that stays, as the reference. Setting
``ASYNCORM_NO_EXTENSIONS=1`` before import runs the Python code instead: the two must behave
the same, and the test suite runs under both.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType


def load(name: str) -> ModuleType | None:
    """The extension module ``name``, or None where it is not built or not wanted."""
    if os.environ.get("ASYNCORM_NO_EXTENSIONS"):
        return None
    try:
        return importlib.import_module(name)
    except ImportError:  # installed without a C compiler: the Python code runs instead
        return None
