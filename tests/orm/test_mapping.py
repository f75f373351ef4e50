"""Declarative mapping: both column styles, inference from annotations, constructor, repr."""

from __future__ import annotations

import uuid

import pytest

import asyncorm
from asyncorm import Column, DeclarativeBase, Integer, Mapped, String, declarative_base
from asyncorm import exc as sa_exc

from .models import Note, User


def test_classic_and_typed_columns_are_mapped() -> None:
    assert [c.name for c in User.__table__.columns] == ["id", "fullname"]
    assert User.__table__.c.fullname.nullable is False
    assert Note.__table__.c.body.nullable is True
    assert Note.__table__.c.title.nullable is False
    assert isinstance(Note.__table__.c.token.type, asyncorm.Uuid)
    assert isinstance(Note.__table__.c.price.type, asyncorm.Numeric)
    assert isinstance(Note.__table__.c.color.type, asyncorm.Enum)
    assert isinstance(Note.__table__.c.data.type, asyncorm.JSON)
    assert User.__table__ in User.metadata.tables.values()


def test_keyword_constructor_and_unknown_keyword() -> None:
    user = User(fullname="John Doe")
    assert user.fullname == "John Doe"
    assert user.id is None  # transient: nothing to load, unset reads as None
    with pytest.raises(TypeError):
        User(fullname="x", nickname="y")


def test_repr_shows_loaded_values_only() -> None:
    user = User(fullname="John Doe")
    assert repr(user) == "User(fullname='John Doe')"


def test_state_lives_in_one_slot() -> None:
    note = Note(title="t")
    assert set(vars(note)) == {"_asyncorm_state", "title"}


def test_declarative_base_factory_and_mapped_column_name() -> None:
    Base = declarative_base()

    class Thing(Base):
        __tablename__ = "things"
        id: Mapped[int] = asyncorm.mapped_column(primary_key=True)
        full_name: Mapped[str] = asyncorm.mapped_column("full name", String(20))

    assert Thing.__table__.c.full_name.name == "full name"
    assert Thing(full_name="a").full_name == "a"


def test_class_without_primary_key_is_refused() -> None:
    class Base(DeclarativeBase):
        pass

    with pytest.raises(sa_exc.ArgumentError, match="primary key"):

        class NoKey(Base):
            __tablename__ = "nokey"
            name = Column(String)


def test_unmappable_annotation_is_refused() -> None:
    class Base(DeclarativeBase):
        pass

    with pytest.raises(sa_exc.ArgumentError, match="cannot infer"):

        class Odd(Base):
            __tablename__ = "odd"
            id = Column(Integer, primary_key=True)
            thing: Mapped[complex]


def test_inspect_transient() -> None:
    user = User(fullname="x")
    state = asyncorm.inspect(user)
    assert state.transient and not state.pending and not state.persistent
    assert state.attrs["fullname"].history.added == ("x",)
    assert asyncorm.inspect(User).class_ is User
    assert isinstance(uuid.uuid4(), uuid.UUID)
