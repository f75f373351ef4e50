"""Serve the example: ``python -m examples.fastapi_app [DATABASE_URL]`` (needs uvicorn).

Then try ``curl -X POST localhost:8000/authors -H 'content-type: application/json'
-d '{"name": "Le Guin", "books": [{"title": "Earthsea"}]}'`` or open localhost:8000/docs.
"""

from __future__ import annotations

import os
import sys

from .app import DEFAULT_DATABASE_URL, create_app


def main() -> None:
    try:
        import uvicorn  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        sys.exit("serving the example needs uvicorn: python -m pip install uvicorn")
    url = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL)
    uvicorn.run(create_app(url), host="127.0.0.1", port=8000)


if __name__ == "__main__":
    main()
