"""Request and response bodies. Responses are read straight from ORM objects
(``from_attributes``), so every attribute they name must be loaded: columns are, with
``expire_on_commit=False``; relationships are loaded explicitly by the queries in routes.py.
"""

from __future__ import annotations

from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

Name = Annotated[str, Field(min_length=1, max_length=100)]
Title = Annotated[str, Field(min_length=1, max_length=200)]
Year = Annotated[int, Field(ge=-3000, le=3000)]


class BookIn(BaseModel):
    title: Title
    year: Year | None = None


class BookCreate(BookIn):
    author_id: int


class BookUpdate(BaseModel):
    title: Title | None = None
    year: Year | None = None
    author_id: int | None = None


class AuthorCreate(BaseModel):
    name: Name
    books: list[BookIn] = []


class AuthorUpdate(BaseModel):
    name: Name


class ORMModel(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class AuthorOut(ORMModel):
    id: int
    name: str


class BookOut(ORMModel):
    id: int
    title: str
    year: int | None
    author_id: int


class AuthorDetail(AuthorOut):
    books: list[BookOut]


class BookDetail(BookOut):
    author: AuthorOut


ItemT = TypeVar("ItemT", bound=BaseModel)


class Page(BaseModel, Generic[ItemT]):
    """One page of a listing, with the total number of items across all pages."""

    items: list[ItemT]
    total: int
    limit: int
    offset: int
