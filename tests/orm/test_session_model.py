"""A stateful property test: random session operations against a plain in-memory model.

The model tracks three layers (what the session's objects show, what was flushed in the open
transaction, and what is committed) and after every step checks the objects, the identity
map and the committed rows (read through a second engine) against it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

import asyncorm
from asyncorm import AsyncEngine, AsyncSession, select
from asyncorm.exc import UnloadedAttributeError

from ..conftest import Database
from .models import Base, User


@dataclass(eq=False)
class Record:
    obj: User
    value: str
    # "pending" | "persistent" | "marked" (for delete) | "deleted" (the DELETE flushed, not
    # yet committed) | "detached"
    status: str
    expired: bool = False
    id: int | None = None


names = st.text(alphabet="abcxyz", min_size=1, max_size=4)


class SessionMachine(RuleBasedStateMachine):
    database: Database

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        # These engines live on this machine's own event loop and are disposed there.
        self.engine: AsyncEngine = self.database.make_engine()
        self.checker: AsyncEngine = self.database.make_engine()
        self.database.engines.remove(self.engine)
        self.database.engines.remove(self.checker)
        self.run(self._reset())
        self.session = AsyncSession(self.engine)
        self.records: list[Record] = []
        self.committed: dict[int, str] = {}
        self.flushed: dict[int, str] = {}

    async def _reset(self) -> None:
        await Base.metadata.drop_all(self.engine)
        await Base.metadata.create_all(self.engine)

    def run(self, coroutine: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        self.run(self.session.close())
        self.run(self.engine.dispose())
        self.run(self.checker.dispose())
        self.loop.close()

    records_bundle = Bundle("records")

    def in_session(self, *statuses: str) -> list[Record]:
        return [r for r in self.records if r.status in statuses]

    # -- rules ------------------------------------------------------------------------------

    @initialize()
    def start(self) -> None:
        pass

    @rule(name=names)
    def add(self, name: str) -> None:
        user = User(fullname=name)
        self.session.add(user)
        self.records.append(Record(user, name, "pending"))

    @precondition(lambda self: self.in_session("pending", "persistent"))
    @rule(data=st.data(), name=names)
    def change(self, data: st.DataObject, name: str) -> None:
        record = data.draw(st.sampled_from(self.in_session("pending", "persistent")))
        record.obj.fullname = name
        record.value = name
        record.expired = False

    @precondition(lambda self: self.in_session("persistent"))
    @rule(data=st.data())
    def delete(self, data: st.DataObject) -> None:
        record = data.draw(st.sampled_from(self.in_session("persistent")))
        self.run(self.session.delete(record.obj))
        record.status = "marked"

    @precondition(lambda self: self.in_session("marked"))
    @rule(data=st.data())
    def add_back(self, data: st.DataObject) -> None:
        record = data.draw(st.sampled_from(self.in_session("marked")))
        self.session.add(record.obj)  # takes back the delete, not flushed yet
        record.status = "persistent"

    @rule()
    def flush(self) -> None:
        self.run(self.session.flush())
        self._after_flush()

    def _after_flush(self) -> None:
        for record in list(self.records):
            if record.status == "pending":
                record.status = "persistent"
                record.id = record.obj.id
                self.flushed[record.id] = record.value
            elif record.status == "persistent" and not record.expired:
                assert record.id is not None
                self.flushed[record.id] = record.value
            elif record.status == "marked":
                assert record.id is not None
                del self.flushed[record.id]
                # Kept (and so alive): a rollback restores it, as SQLAlchemy does.
                record.status = "deleted"

    @rule()
    def commit(self) -> None:
        self.run(self.session.commit())
        self._after_flush()
        self.records = [r for r in self.records if r.status != "deleted"]
        self.committed = dict(self.flushed)
        for record in self.in_session("persistent"):
            record.expired = True

    @rule()
    def rollback(self) -> None:
        began = self.session.in_transaction()
        self.run(self.session.rollback())
        if not began:
            return  # nothing begun since the last commit: as in SQLAlchemy, a no-op
        self.flushed = dict(self.committed)
        for record in list(self.records):
            if record.status == "detached":
                continue
            # A deleted row that existed before the transaction comes back, persistent; one
            # inserted in it (and maybe deleted too) is gone, its object transient.
            if record.status == "pending" or record.id not in self.committed:
                self.records.remove(record)
                continue
            record.status = "persistent"
            record.expired = True
            record.value = self.committed[record.id]

    @precondition(lambda self: self.in_session("persistent"))
    @rule(data=st.data())
    def expire(self, data: st.DataObject) -> None:
        record = data.draw(st.sampled_from(self.in_session("persistent")))
        self.session.expire(record.obj)
        record.expired = True
        assert record.id is not None
        record.value = self.flushed[record.id]

    @precondition(lambda self: self.in_session("persistent"))
    @rule(data=st.data())
    def refresh(self, data: st.DataObject) -> None:
        record = data.draw(st.sampled_from(self.in_session("persistent")))
        self.run(self.session.refresh(record.obj))
        assert record.id is not None
        record.value = self.flushed[record.id]
        record.expired = False

    @precondition(lambda self: self.in_session("persistent"))
    @rule(data=st.data())
    def expunge(self, data: st.DataObject) -> None:
        record = data.draw(
            st.sampled_from([r for r in self.in_session("persistent") if not r.expired] or [None])
        )
        if record is None:
            return
        self.session.expunge(record.obj)
        record.status = "detached"

    def mergeable(self) -> list[Record]:
        marked = {r.id for r in self.in_session("marked")}
        return [
            r for r in self.in_session("detached") if r.id in self.flushed and r.id not in marked
        ]

    @precondition(lambda self: self.mergeable())
    @rule(data=st.data())
    def merge(self, data: st.DataObject) -> None:
        record = data.draw(st.sampled_from(self.mergeable()))
        in_map = any(r.id == record.id for r in self.in_session("persistent"))
        merged = self.run(self.session.merge(record.obj))
        if not in_map:
            self._after_flush()  # a miss loads the row with get(), which autoflushes
        existing = next(
            (r for r in self.records if r.obj is merged and r.status != "detached"), None
        )
        if existing is None:
            existing = Record(merged, record.value, "persistent", id=record.id)
            self.records.append(existing)
        existing.value = record.value
        existing.expired = False
        assert merged is not record.obj

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def objects_match_the_model(self) -> None:
        for record in self.records:
            state = asyncorm.inspect(record.obj)
            if record.status == "pending":
                assert state.pending and record.obj in self.session.new
            elif record.status == "detached":
                assert state.detached and record.obj not in self.session
                continue
            elif record.status == "marked":
                assert record.obj in self.session.deleted
            elif record.status == "deleted":
                assert state.deleted and record.obj not in self.session
                continue
            else:
                assert state.persistent and record.obj in self.session
            if record.expired:
                with pytest.raises(UnloadedAttributeError):
                    _ = record.obj.fullname
            else:
                assert record.obj.fullname == record.value

    @invariant()
    def identity_map_holds_one_object_per_row(self) -> None:
        seen: dict[int, User] = {}
        for record in self.in_session("persistent", "marked"):
            assert record.id is not None
            assert seen.setdefault(record.id, record.obj) is record.obj

    @invariant()
    def committed_rows_match_the_model(self) -> None:
        async def rows() -> dict[int, str]:
            async with self.checker.connect() as conn:
                result = await conn.execute(select(User.id, User.fullname))
                return {row[0]: row[1] for row in result.all()}

        assert self.run(rows()) == self.committed


@pytest.mark.anyio
async def test_session_agrees_with_model(db: Database) -> None:
    SessionMachine.database = db
    runner = SessionMachine.TestCase
    runner.settings = settings(
        max_examples=60,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )
    # Hypothesis drives the machine synchronously; it runs its own event loop in a thread.
    await anyio.to_thread.run_sync(runner().runTest)
