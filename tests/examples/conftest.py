"""Make the repository root importable, so ``examples.fastapi_app`` imports as a package
however pytest is started (``python -m pytest`` adds the working directory; ``pytest`` does not).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parents[2])
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
