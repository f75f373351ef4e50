"""examples/fastapi_app, driven over HTTP (httpx's ASGI transport) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.exceptions import ResponseValidationError
from pydantic import BaseModel, ConfigDict, ValidationError

from asyncorm import AsyncEngine, AsyncSession, event
from asyncorm.exc import UnloadedAttributeError
from examples.fastapi_app import create_app
from examples.fastapi_app.models import Author, Book
from examples.fastapi_app.routes import DbSession
from examples.fastapi_app.schemas import AuthorCreate, AuthorOut

from ..conftest import Database

pytestmark = pytest.mark.anyio

CONFLICT = {"detail": "conflict: a unique value (author name, or title per author) is taken"}


@asynccontextmanager
async def running(
    db: Database, **engine_options: Any
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The app on the test's database, its lifespan entered (ASGITransport does not run it)."""
    connect_args = {"server_settings": {"search_path": db.schema}} if db.schema else None
    app = create_app(db.url, connect_args, **engine_options)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield app, client


@pytest.fixture
async def client(db: Database) -> AsyncIterator[httpx.AsyncClient]:
    async with running(db) as (_, client):
        yield client


async def create_author(client: httpx.AsyncClient, name: str, *titles: str) -> dict[str, Any]:
    books = [{"title": title} for title in titles]
    response = await client.post("/authors", json={"name": name, "books": books})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


# -- the API -------------------------------------------------------------------------------


async def test_crud_flow(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/authors",
        json={
            "name": "Le Guin",
            "books": [{"title": "Earthsea", "year": 1968}, {"title": "Lathe"}],
        },
    )
    assert response.status_code == 201
    le_guin = response.json()
    author_id = le_guin["id"]
    earthsea, lathe = (book["id"] for book in le_guin["books"])
    assert le_guin == {
        "id": author_id,
        "name": "Le Guin",
        "books": [
            {"id": earthsea, "title": "Earthsea", "year": 1968, "author_id": author_id},
            {"id": lathe, "title": "Lathe", "year": None, "author_id": author_id},
        ],
    }
    assert (await client.get(f"/authors/{author_id}")).json() == le_guin

    response = await client.patch(f"/authors/{author_id}", json={"name": "Ursula K. Le Guin"})
    assert response.status_code == 200
    assert response.json() == {"id": author_id, "name": "Ursula K. Le Guin"}

    butler = await create_author(client, "Butler")
    response = await client.post(
        "/books", json={"title": "Kindred", "year": 1979, "author_id": butler["id"]}
    )
    assert response.status_code == 201
    kindred = response.json()
    assert kindred == {
        "id": kindred["id"],
        "title": "Kindred",
        "year": 1979,
        "author_id": butler["id"],
        "author": {"id": butler["id"], "name": "Butler"},
    }
    assert (await client.get(f"/books/{kindred['id']}")).json() == kindred

    # Move "Lathe" to Butler and give it a year: the response shows the new author.
    response = await client.patch(f"/books/{lathe}", json={"year": 1971, "author_id": butler["id"]})
    assert response.status_code == 200
    assert response.json() == {
        "id": lathe,
        "title": "Lathe",
        "year": 1971,
        "author_id": butler["id"],
        "author": {"id": butler["id"], "name": "Butler"},
    }
    response = await client.patch(f"/books/{lathe}", json={"title": "The Lathe of Heaven"})
    assert (response.json()["title"], response.json()["year"]) == ("The Lathe of Heaven", 1971)
    response = await client.patch(f"/books/{lathe}", json={"year": None})  # null clears it
    assert (response.json()["title"], response.json()["year"]) == ("The Lathe of Heaven", None)
    butler_books = (await client.get(f"/authors/{butler['id']}")).json()["books"]
    assert [book["title"] for book in butler_books] == ["The Lathe of Heaven", "Kindred"]  # by id
    le_guin_books = (await client.get(f"/authors/{author_id}")).json()["books"]
    assert [book["title"] for book in le_guin_books] == ["Earthsea"]

    response = await client.delete(f"/books/{kindred['id']}")
    assert response.status_code == 204 and response.content == b""
    assert (await client.get(f"/books/{kindred['id']}")).status_code == 404

    # Deleting an author deletes their books (cascade="all, delete-orphan").
    assert (await client.delete(f"/authors/{butler['id']}")).status_code == 204
    assert (await client.get(f"/books/{lathe}")).status_code == 404
    listing = (await client.get("/books")).json()
    assert [book["title"] for book in listing["items"]] == ["Earthsea"]
    assert listing["total"] == 1
    authors = (await client.get("/authors")).json()
    assert authors == {
        "items": [{"id": author_id, "name": "Ursula K. Le Guin"}],
        "total": 1,
        "limit": 20,
        "offset": 0,
    }


async def test_pagination(client: httpx.AsyncClient) -> None:
    for number in range(25):
        await create_author(client, f"author {number:02}")
    first = (await client.get("/authors")).json()
    assert (first["total"], first["limit"], first["offset"]) == (25, 20, 0)
    assert [a["name"] for a in first["items"]] == [f"author {n:02}" for n in range(20)]
    last = (await client.get("/authors", params={"limit": 10, "offset": 20})).json()
    assert [a["name"] for a in last["items"]] == [f"author {n:02}" for n in range(20, 25)]
    assert (last["total"], last["limit"], last["offset"]) == (25, 10, 20)
    beyond = (await client.get("/authors", params={"offset": 100})).json()
    assert beyond["items"] == [] and beyond["total"] == 25

    invalid: list[dict[str, int | str]] = [
        {"limit": 0},
        {"limit": 101},
        {"offset": -1},
        {"limit": "ten"},
    ]
    for params in invalid:
        response = await client.get("/authors", params=params)
        assert response.status_code == 422, params

    prolific = await create_author(client, "prolific", *(f"book {n}" for n in range(7)))
    await create_author(client, "other", "other book")
    page = (
        await client.get("/books", params={"author_id": prolific["id"], "limit": 3, "offset": 3})
    ).json()
    assert page["total"] == 7
    assert [b["title"] for b in page["items"]] == ["book 3", "book 4", "book 5"]
    assert {b["author"]["name"] for b in page["items"]} == {"prolific"}
    assert (await client.get("/books")).json()["total"] == 8


async def test_conflict_is_409_and_missing_is_404(client: httpx.AsyncClient) -> None:
    author = await create_author(client, "Borges", "Ficciones")
    other = await create_author(client, "Calvino")

    response = await client.post("/authors", json={"name": "Borges"})
    assert (response.status_code, response.json()) == (409, CONFLICT)
    response = await client.patch(f"/authors/{other['id']}", json={"name": "Borges"})
    assert (response.status_code, response.json()) == (409, CONFLICT)
    book = {"title": "Ficciones", "author_id": author["id"]}
    response = await client.post("/books", json=book)
    assert (response.status_code, response.json()) == (409, CONFLICT)
    # The same title under another author is fine; the failed requests left no trace.
    response = await client.post("/books", json={**book, "author_id": other["id"]})
    assert response.status_code == 201
    assert (await client.get("/authors")).json()["total"] == 2
    assert (await client.get(f"/authors/{other['id']}")).json()["name"] == "Calvino"

    missing = {"detail": "no Author row with primary key 999"}
    for method, url, body in [
        ("GET", "/authors/999", None),
        ("PATCH", "/authors/999", {"name": "x"}),
        ("DELETE", "/authors/999", None),
        ("POST", "/authors/999/books", [{"title": "x"}]),
        ("POST", "/books", {"title": "x", "author_id": 999}),
    ]:
        response = await client.request(method, url, json=body)
        assert (response.status_code, response.json()) == (404, missing), (method, url)
    response = await client.get("/books/999")
    assert (response.status_code, response.json()) == (
        404,
        {"detail": "no Book row with primary key 999"},
    )
    response = await client.patch("/books/1", json={"author_id": 999})
    assert (response.status_code, response.json()) == (404, missing)


# -- transactions and the pool -------------------------------------------------------------


async def test_a_request_failing_midway_commits_nothing(db: Database) -> None:
    async with running(db) as (app, client):
        author = await create_author(client, "Lem", "Solaris")
        before = (await client.get(f"/authors/{author['id']}")).json()

        # Two new books are INSERTed (flushed one by one), then the third is a duplicate.
        batch = [{"title": "Fiasco"}, {"title": "Eden"}, {"title": "Solaris"}]
        response = await client.post(f"/authors/{author['id']}/books", json=batch)
        assert (response.status_code, response.json()) == (409, CONFLICT)
        assert (await client.get(f"/authors/{author['id']}")).json() == before
        assert (await client.get("/books")).json()["total"] == 1

        # A new author whose own books collide: neither the author nor a book is stored.
        response = await client.post(
            "/authors", json={"name": "Dick", "books": [{"title": "Ubik"}, {"title": "Ubik"}]}
        )
        assert response.status_code == 409
        assert (await client.get("/authors")).json()["total"] == 1

        # Any other exception after a flush: the session closes and rolls back.
        @app.post("/authors/{author_id}/crash")
        async def crash(author_id: int, session: DbSession) -> None:
            session.add(Book(title="Half-written", author_id=author_id))
            await session.flush()
            raise RuntimeError("the handler fails after its INSERT")

        with pytest.raises(RuntimeError, match="after its INSERT"):
            await client.post(f"/authors/{author['id']}/crash")
        assert (await client.get(f"/authors/{author['id']}")).json() == before

        # ... and with the full batch valid, everything is committed together.
        response = await client.post(f"/authors/{author['id']}/books", json=batch[:2])
        assert response.status_code == 201
        titles = [book["title"] for book in response.json()["books"]]
        assert titles == ["Solaris", "Fiasco", "Eden"]
        assert (await client.get("/books")).json()["total"] == 3


async def test_100_concurrent_requests_through_a_pool_of_5(db: Database) -> None:
    async with running(db, pool_size=5, max_overflow=0) as (app, client):
        engine: AsyncEngine = app.state.engine
        most_checked_out = 0

        def watch(*_: object) -> None:
            nonlocal most_checked_out
            most_checked_out = max(most_checked_out, engine.pool.status()["checked_out"])

        event.listen(engine, "before_execute", watch)
        author = await create_author(client, "Pratchett")
        writes = [
            client.post("/books", json={"title": f"Discworld {n}", "author_id": author["id"]})
            for n in range(50)
        ]
        reads = [client.get(f"/authors/{author['id']}") for _ in range(25)]
        pages = [client.get("/books", params={"limit": 5, "offset": n}) for n in range(25)]
        responses = await asyncio.gather(*writes, *reads, *pages)

        assert [r.status_code for r in responses] == [201] * 50 + [200] * 50
        created = {r.json()["title"] for r in responses[:50]}
        assert created == {f"Discworld {n}" for n in range(50)}
        listing = (await client.get("/books", params={"author_id": author["id"]})).json()
        assert listing["total"] == 50
        status = engine.pool.status()
        assert status["checked_out"] == 0 and status["waiting"] == 0
        assert 1 <= most_checked_out <= (1 if db.is_sqlite else 5)
    # Leaving the lifespan disposed of the engine: no connection is left open.
    assert engine.pool.status()["checked_in"] == 0


# -- the trap: returning objects that commit expired ---------------------------------------


async def test_expired_objects_meet_an_error_that_names_the_fix(db: Database) -> None:
    async with running(db) as (app, client):
        engine: AsyncEngine = app.state.engine

        @app.post("/trap/authors", response_model=AuthorOut)
        async def trap(body: AuthorCreate) -> Any:
            # The default sessionmaker setting, expire_on_commit=True: commit expires `author`.
            async with AsyncSession(engine) as session:
                author = Author(name=body.name)
                session.add(author)
                await session.commit()
                return author  # FastAPI reads author.name after this: it is expired

        with pytest.raises(ResponseValidationError) as caught:
            await client.post("/trap/authors", json={"name": "Expired"})
        [error] = caught.value.errors()
        assert error["type"] == "get_attribute_error" and error["loc"] == ("response", "name")
        message = error["msg"]
        assert "UnloadedAttributeError: Author.name was expired" in message
        assert "expire_on_commit=False" in message
        assert "await session.refresh(obj, ['name'])" in message

        # The same body through the example's own endpoint (expire_on_commit=False) works.
        response = await client.post("/authors", json={"name": "Fresh"})
        assert response.status_code == 201 and response.json()["name"] == "Fresh"

        # Not an AttributeError, so neither getattr() nor a Pydantic default can hide it.
        async with AsyncSession(engine) as session:
            author = await session.get_one(Author, response.json()["id"])
            await session.commit()
        assert not issubclass(UnloadedAttributeError, AttributeError)
        with pytest.raises(UnloadedAttributeError, match="expire_on_commit=False"):
            getattr(author, "name", None)

        class Lenient(BaseModel):
            model_config = ConfigDict(from_attributes=True)
            id: int
            name: str = "(a silently wrong default)"

        with pytest.raises(ValidationError, match="UnloadedAttributeError"):
            Lenient.model_validate(author)
