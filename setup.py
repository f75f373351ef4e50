"""The optional C parts of asyncorm: ``asyncorm/_orm/_speedups.c``, the ORM's per-object
work (loading rows into objects, column attribute access, expiry, detaching at close), and
``asyncorm/_dialects/_speedups.c``, binding many rows of parameters.

Everything else is in ``pyproject.toml``. The extension is optional: where it cannot be
built (no compiler, another Python implementation), asyncorm installs without it and runs
the same code in Python, more slowly.
"""

import platform

from setuptools import Extension, setup

extensions = []
if platform.python_implementation() == "CPython":
    for package in ("_orm", "_dialects"):
        extensions.append(
            Extension(
                f"asyncorm.{package}._speedups",
                [f"asyncorm/{package}/_speedups.c"],
                optional=True,
            )
        )

setup(ext_modules=extensions)
