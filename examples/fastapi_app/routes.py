"""The HTTP API: CRUD on authors and books, with pagination.

Every handler takes a request-scoped session from :func:`get_session`, commits explicitly,
and returns Pydantic models read from the ORM objects. Relationships that a response includes
are loaded by the query (``selectinload`` / ``joinedload``): asyncorm never loads on access.
Errors need no handling here: the app maps ``NoResultFound`` (from ``get_one``) to 404 and
``IntegrityError`` (from a flush or commit) to 409, and closing the session rolls back
whatever was not committed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from asyncorm import AsyncSession, async_sessionmaker, func, joinedload, select, selectinload

from .models import Author, Book
from .schemas import (
    AuthorCreate,
    AuthorDetail,
    AuthorOut,
    AuthorUpdate,
    BookCreate,
    BookDetail,
    BookIn,
    BookUpdate,
    Page,
)


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One session per request, from the sessionmaker that the app's lifespan made.

    The sessionmaker has ``expire_on_commit=False``, so objects stay readable after
    ``commit()`` for the response. Leaving the block closes the session, which rolls back
    anything not committed (an error halfway through a handler commits nothing).
    """
    sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
    async with sessionmaker() as session:
        yield session


DbSession = Annotated[AsyncSession, Depends(get_session)]
Limit = Annotated[int, Query(ge=1, le=100, description="page size")]
Offset = Annotated[int, Query(ge=0, description="items to skip")]

router = APIRouter()


# -- authors -------------------------------------------------------------------------------


@router.post("/authors", status_code=201)
async def create_author(body: AuthorCreate, session: DbSession) -> AuthorDetail:
    author = Author(
        name=body.name, books=[Book(title=book.title, year=book.year) for book in body.books]
    )
    session.add(author)  # cascades to the books
    await session.commit()
    return AuthorDetail.model_validate(author)


@router.get("/authors")
async def list_authors(
    session: DbSession, limit: Limit = 20, offset: Offset = 0
) -> Page[AuthorOut]:
    total = (await session.execute(select(func.count()).select_from(Author))).scalar_one()
    authors = await session.scalars(select(Author).order_by(Author.id).limit(limit).offset(offset))
    return Page[AuthorOut](
        items=[AuthorOut.model_validate(author) for author in authors],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/authors/{author_id}")
async def get_author(author_id: int, session: DbSession) -> AuthorDetail:
    author = await session.get_one(Author, author_id, options=[selectinload(Author.books)])
    return AuthorDetail.model_validate(author)


@router.patch("/authors/{author_id}")
async def update_author(author_id: int, body: AuthorUpdate, session: DbSession) -> AuthorOut:
    author = await session.get_one(Author, author_id)
    author.name = body.name
    await session.commit()
    return AuthorOut.model_validate(author)


@router.delete("/authors/{author_id}", status_code=204)
async def delete_author(author_id: int, session: DbSession) -> None:
    author = await session.get_one(Author, author_id)
    await session.delete(author)  # loads and deletes the books too (cascade="all, ...")
    await session.commit()


@router.post("/authors/{author_id}/books", status_code=201)
async def add_books(author_id: int, body: list[BookIn], session: DbSession) -> AuthorDetail:
    """Add several books in one transaction: all of them, or (on a conflict) none."""
    author = await session.get_one(Author, author_id, options=[selectinload(Author.books)])
    for book in body:
        author.books.append(Book(title=book.title, year=book.year))
        # Flushing one by one makes a duplicate title fail on its own INSERT; the books
        # flushed before it are rolled back with the transaction, so nothing is committed.
        await session.flush()
    await session.commit()
    return AuthorDetail.model_validate(author)


# -- books ---------------------------------------------------------------------------------


@router.post("/books", status_code=201)
async def create_book(body: BookCreate, session: DbSession) -> BookDetail:
    author = await session.get_one(Author, body.author_id)
    book = Book(title=body.title, year=body.year, author=author)
    session.add(book)
    await session.commit()
    return BookDetail.model_validate(book)


@router.get("/books")
async def list_books(
    session: DbSession, limit: Limit = 20, offset: Offset = 0, author_id: int | None = None
) -> Page[BookDetail]:
    count = select(func.count()).select_from(Book)
    query = select(Book).options(joinedload(Book.author)).order_by(Book.id)
    if author_id is not None:
        count = count.where(Book.author_id == author_id)
        query = query.where(Book.author_id == author_id)
    total = (await session.execute(count)).scalar_one()
    books = await session.scalars(query.limit(limit).offset(offset))
    return Page[BookDetail](
        items=[BookDetail.model_validate(book) for book in books],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.get("/books/{book_id}")
async def get_book(book_id: int, session: DbSession) -> BookDetail:
    book = await session.get_one(Book, book_id, options=[joinedload(Book.author)])
    return BookDetail.model_validate(book)


@router.patch("/books/{book_id}")
async def update_book(book_id: int, body: BookUpdate, session: DbSession) -> BookDetail:
    book = await session.get_one(Book, book_id, options=[joinedload(Book.author)])
    if body.title is not None:
        book.title = body.title
    if "year" in body.model_fields_set:  # an explicit null clears the year
        book.year = body.year
    if body.author_id is not None:
        book.author = await session.get_one(Author, body.author_id)
    await session.commit()
    return BookDetail.model_validate(book)


@router.delete("/books/{book_id}", status_code=204)
async def delete_book(book_id: int, session: DbSession) -> None:
    book = await session.get_one(Book, book_id)
    await session.delete(book)
    await session.commit()


__all__ = ["DbSession", "get_session", "router"]
