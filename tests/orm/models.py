"""Models shared by the ORM tests: the seed article's classic ``User`` and a typed one."""

from __future__ import annotations

import datetime
import decimal
import enum
import uuid

from asyncorm import (
    Column,
    DateTime,
    DeclarativeBase,
    ForeignKey,
    Integer,
    Mapped,
    String,
    func,
    mapped_column,
)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True, autoincrement=True)
    fullname = Column(String, nullable=False)


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Note(Base):
    __tablename__ = "notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str | None]
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    score: Mapped[float] = mapped_column(default=0.0)
    price: Mapped[decimal.Decimal | None]
    color: Mapped[Color | None]
    token: Mapped[uuid.UUID] = mapped_column(default=uuid.uuid4)
    data: Mapped[dict[str, object] | None]
    created: Mapped[datetime.datetime | None] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class Seat(Base):
    """A two-column primary key, both parts given by the application."""

    __tablename__ = "seats"
    row: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(50))


class Ticket(Base):
    """Python-side ``default`` and ``onupdate`` values."""

    __tablename__ = "tickets"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(50))
    state: Mapped[str] = mapped_column(String(20), default="new", onupdate="edited")
