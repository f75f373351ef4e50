"""The optional C part of asyncorm, ``asyncorm/_orm/_speedups.c``: the ORM's per-object
work (loading rows into objects, column attribute access, expiry, detaching at close).

Everything else is in ``pyproject.toml``. The extension is optional: where it cannot be
built (no compiler, another Python implementation), asyncorm installs without it and runs
the same code in Python, more slowly.
"""

import platform

from setuptools import Extension, setup

extensions = []
if platform.python_implementation() == "CPython":
    extensions.append(
        Extension("asyncorm._orm._speedups", ["asyncorm/_orm/_speedups.c"], optional=True)
    )

setup(ext_modules=extensions)
