"""User-style code checked by ``mypy --strict`` in CI: the typed surface users rely on.

Each ``assert_type`` fails the type check if a change makes the public API less precise.
The file is also imported by the test suite, so it must stay valid at runtime.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_type

from asyncorm import (
    AsyncEngine,
    AsyncSession,
    DeclarativeBase,
    ForeignKey,
    Mapped,
    Result,
    Row,
    ScalarResult,
    String,
    async_sessionmaker,
    create_engine,
    mapped_column,
    relationship,
    select,
)
from asyncorm._orm.attributes import InstrumentedAttribute


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "typing_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    fullname: Mapped[str] = mapped_column(String(100))
    nickname: Mapped[str | None]
    addresses: Mapped[list[Address]] = relationship(back_populates="user")


class Address(Base):
    __tablename__ = "typing_addresses"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("typing_users.id"))
    user: Mapped[User] = relationship(back_populates="addresses")


def attributes(user: User) -> None:
    assert_type(user.id, int)
    assert_type(user.nickname, str | None)
    assert_type(user.addresses, list[Address])
    assert_type(User.id, InstrumentedAttribute[int])


async def queries(engine: AsyncEngine) -> None:
    async with AsyncSession(engine) as session:
        assert_type(session, AsyncSession)
        assert_type(await session.get(User, 1), User | None)
        assert_type(await session.get_one(User, 1), User)
        users = (await session.scalars(select(User))).all()
        assert_type(users, Sequence[User])
        result = await session.execute(select(User.id, User.fullname))
        assert_type(result, Result[tuple[int, str]])
        rows = result.all()
        assert_type(rows, Sequence[Row[tuple[int, str]]])
        assert_type(await session.scalar(select(User.fullname)), str | None)
        scalars = await session.scalars(select(User.id))
        assert_type(scalars, ScalarResult[int])
        assert_type(scalars.first(), int | None)


def factories() -> None:
    engine = create_engine("sqlite:///typing.db")
    assert_type(engine, AsyncEngine)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    assert_type(maker(), AsyncSession)
