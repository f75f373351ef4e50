"""The application factory: engine and tables in the lifespan, errors mapped to HTTP.

Serve it with ``python -m examples.fastapi_app [DATABASE_URL]``, or with
``uvicorn examples.fastapi_app.app:app`` (which reads ``DATABASE_URL``; both default to a
SQLite file, ``fastapi_app.db``, in the current directory). Run from the repository root.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from asyncorm import async_sessionmaker, create_engine
from asyncorm.exc import IntegrityError, NoResultFound

from .models import Base
from .routes import router

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///fastapi_app.db"


def create_app(
    database_url: str, connect_args: dict[str, Any] | None = None, **engine_options: Any
) -> FastAPI:
    """A new app on ``database_url``; ``connect_args`` and ``engine_options`` (``pool_size``,
    ``max_overflow``, ``echo``, ...) go to :func:`asyncorm.create_engine`. No I/O happens
    until the app's lifespan starts.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(database_url, connect_args=connect_args or {}, **engine_options)
        try:
            await Base.metadata.create_all(engine)
            app.state.engine = engine
            # expire_on_commit=False: objects stay readable after commit, so a handler can
            # commit and then build its response from them (see routes.get_session).
            app.state.sessionmaker = async_sessionmaker(engine, expire_on_commit=False)
            yield
        finally:
            await engine.dispose()

    app = FastAPI(title="asyncorm example: authors and books", lifespan=lifespan)
    app.include_router(router)
    app.add_exception_handler(NoResultFound, not_found)
    app.add_exception_handler(IntegrityError, conflict)
    return app


async def not_found(request: Request, error: Exception) -> JSONResponse:
    """``session.get_one()`` / ``result.one()`` found nothing: 404."""
    return JSONResponse({"detail": str(error)}, status_code=404)


async def conflict(request: Request, error: Exception) -> JSONResponse:
    """A flush or commit violated a constraint (a duplicate name or title): 409.

    The transaction was rolled back; the request's session is closed right after.
    """
    return JSONResponse(
        {"detail": "conflict: a unique value (author name, or title per author) is taken"},
        status_code=409,
    )


app = create_app(os.environ.get("DATABASE_URL", DEFAULT_DATABASE_URL))
