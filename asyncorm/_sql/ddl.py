"""DDL statements (CREATE/DROP TABLE and INDEX) and the order tables are created in."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ..exc import ArgumentError
from .base import Executable
from .cache_key import AnonMap

if TYPE_CHECKING:
    from .elements import BindParameter
    from .schema import Index, Table

__all__ = [
    "CreateIndex",
    "CreateTable",
    "DDLRunner",
    "DropIndex",
    "DropTable",
    "create_statements",
    "drop_statements",
    "sort_tables",
]


class DDLRunner(Protocol):
    """What ``metadata.create_all(bind)`` needs from ``bind``: an engine or a connection
    that runs the statements in one transaction."""

    async def _run_ddl(self, statements: Sequence[Executable]) -> None: ...


class _DDLElement(Executable):
    _returns_rows = False

    def __init__(self, element: Any, *, if_exists: bool = True) -> None:
        self.element = element
        self.if_exists = if_exists

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return (self.__visit_name__, self.element, self.if_exists)


class CreateTable(_DDLElement):
    """``CREATE TABLE [IF NOT EXISTS]`` with columns, keys and constraints."""

    __visit_name__ = "create_table"
    element: Table


class DropTable(_DDLElement):
    """``DROP TABLE [IF EXISTS]``."""

    __visit_name__ = "drop_table"
    element: Table


class CreateIndex(_DDLElement):
    """``CREATE [UNIQUE] INDEX [IF NOT EXISTS]``."""

    __visit_name__ = "create_index"
    element: Index


class DropIndex(_DDLElement):
    """``DROP INDEX [IF EXISTS]``."""

    __visit_name__ = "drop_index"
    element: Index


def sort_tables(tables: Iterable[Table]) -> list[Table]:
    """Tables ordered so each comes after the tables its foreign keys refer to.

    A table referring to itself is fine; a cycle between tables is refused, because neither
    table could be created first.
    """
    pending = list(tables)
    included = {id(table) for table in pending}
    depends: dict[int, set[int]] = {}
    for table in pending:
        depends[id(table)] = {
            id(fk.column.table)
            for fk in table.foreign_keys
            if fk.column.table is not table and id(fk.column.table) in included
        }
    ordered: list[Table] = []
    done: set[int] = set()
    while pending:
        ready = [table for table in pending if depends[id(table)] <= done]
        if not ready:
            names = ", ".join(sorted(table.name for table in pending))
            raise ArgumentError(f"the foreign keys between tables {names} form a cycle")
        for table in ready:
            ordered.append(table)
            done.add(id(table))
        pending = [table for table in pending if id(table) not in done]
    return ordered


def create_statements(tables: Iterable[Table], checkfirst: bool = True) -> list[Executable]:
    statements: list[Executable] = []
    for table in sort_tables(tables):
        statements.append(CreateTable(table, if_exists=checkfirst))
        statements.extend(CreateIndex(index, if_exists=checkfirst) for index in table.indexes)
    return statements


def drop_statements(tables: Iterable[Table], checkfirst: bool = True) -> list[Executable]:
    return [DropTable(table, if_exists=checkfirst) for table in reversed(sort_tables(tables))]
