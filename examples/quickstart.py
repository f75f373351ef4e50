"""The seed article, in its async form: a session's life from add to merge.

Run it on SQLite (no server needed):      python examples/quickstart.py
or on PostgreSQL:                         python examples/quickstart.py postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile

from asyncorm import (
    AsyncSession,
    Column,
    DeclarativeBase,
    Integer,
    String,
    create_engine,
    inspect,
    select,
)
from asyncorm.exc import UnloadedAttributeError


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id = Column(Integer, primary_key=True, autoincrement=True)
    fullname = Column(String, nullable=False)


def step(title: str) -> None:
    print(f"\n== {title}")


async def main(url: str, connect_args: dict[str, object] | None = None) -> None:
    engine = create_engine(url, connect_args=connect_args or {})
    await Base.metadata.drop_all(engine)
    await Base.metadata.create_all(engine)

    step("Create: add, flush, commit")
    async with AsyncSession(engine) as session:
        john = User(fullname="John Doe")
        print("before add:", john.fullname, "| state transient:", inspect(john).transient)
        session.add(john)
        print(
            "after add: pending:", inspect(john).pending, "| in session.new:", john in session.new
        )
        print("in transaction before flush:", session.in_transaction())
        await session.flush()  # autobegin: the transaction starts here, INSERT is sent
        print("after flush: id =", john.id, "| in transaction:", session.in_transaction())
        await session.commit()
        print(
            "after commit: persistent:",
            inspect(john).persistent,
            "| expired:",
            sorted(inspect(john).expired_attributes),
        )

    step("Identity map: one row, one object")
    async with AsyncSession(engine) as session:
        u1 = (await session.scalars(select(User).where(User.id == john.id))).one()
        u2 = (await session.scalars(select(User).where(User.id == john.id))).one()
        print("u1 is u2:", u1 is u2)

    step("Read: execute() returns rows, scalars() the first column of each")
    async with AsyncSession(engine) as session:
        session.add(User(fullname="Jane Roe"))
        await session.commit()
        stmt1 = select(User).where(User.fullname == "John Doe")
        print("execute(stmt1).all():", (await session.execute(stmt1)).all())
        print("scalars(stmt1).all():", (await session.scalars(stmt1)).all())
        stmt2 = select(User.id, User.fullname).where(User.fullname == "John Doe")
        print("execute(stmt2).all():", (await session.execute(stmt2)).all())
        print("scalars(stmt2).all():", (await session.scalars(stmt2)).all())
        everyone = select(User).order_by(User.id)
        print(".first():", (await session.execute(everyone)).first())
        print(".one():", (await session.execute(stmt1)).one())
        print(".scalar():", await session.scalar(select(User.fullname).order_by(User.id)))
        nobody = select(User).where(User.fullname == "Nobody")
        print(".first() of nothing:", (await session.execute(nobody)).first())
        print(".scalar() of nothing:", await session.scalar(nobody))

    step("Update: change an attribute, see it in session.dirty, commit")
    async with AsyncSession(engine) as session:
        user = await session.scalar(select(User).where(User.fullname == "John Doe"))
        assert user is not None
        user.fullname = "Alice"
        print("user in session.dirty:", user in session.dirty)
        await session.commit()

    step("Delete: session.delete(), see it in session.deleted, commit")
    async with AsyncSession(engine) as session:
        alice = await session.scalar(select(User).where(User.fullname == "Alice"))
        await session.delete(alice)
        print("alice in session.deleted:", alice in session.deleted)
        await session.commit()
        print("rows left:", (await session.scalars(select(User.fullname))).all())

    step("Autobegin")
    async with AsyncSession(engine) as session:
        print("in_transaction before any work:", session.in_transaction())
        await session.execute(select(User))
        print("in_transaction after execute():", session.in_transaction())

    step("Expire: attributes must be reloaded, and asyncorm never does that implicitly")
    async with AsyncSession(engine) as session:
        jane = await session.scalar(select(User).where(User.fullname == "Jane Roe"))
        assert jane is not None
        session.expire(jane)
        try:
            print(jane.fullname)
        except UnloadedAttributeError as error:
            print("reading an expired attribute raises:", type(error).__name__)
            print("  ", error)
        print("the primary key stays readable: id =", jane.id)

        step("Refresh: reload now")
        await session.refresh(jane)
        print("after refresh:", jane.fullname)

        step("Rollback: flushed changes are undone, objects expire")
        jane.fullname = "Jane Changed"
        await session.flush()
        print("flushed, uncommitted:", await session.scalar(select(User.fullname)))
        await session.rollback()
        await session.refresh(jane)
        print("after rollback:", jane.fullname)

        step("Expunge: the session stops tracking the object")
        session.expunge(jane)
        print("detached:", inspect(jane).detached, "| jane in session:", jane in session)

    step("Merge: attach a detached object's state to a session's own instance")
    jane.fullname = "Jane Merged"
    async with AsyncSession(engine) as other:
        merged = await other.merge(jane)
        print("merged is jane:", merged is jane, "| merged in other:", merged in other)
        print("merged.fullname:", merged.fullname, "| dirty:", merged in other.dirty)
        await other.commit()
    async with AsyncSession(engine) as session:
        print("in the database:", (await session.scalars(select(User.fullname))).all())

    await Base.metadata.drop_all(engine)
    await engine.dispose()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        database_url = sys.argv[1]
    else:
        database_url = f"sqlite:///{os.path.join(tempfile.mkdtemp(), 'quickstart.db')}"
    asyncio.run(main(database_url))
