"""asyncorm: an async-first ORM with SQLAlchemy 2.x's API and no implicit I/O."""

from __future__ import annotations

from . import event as event
from . import exc as exc

# --- engine layer (asyncorm._engine) re-exports: keep this block sorted ---
from ._engine.connection import AsyncConnection as AsyncConnection
from ._engine.connection import AsyncTransaction as AsyncTransaction
from ._engine.engine import AsyncEngine as AsyncEngine
from ._engine.engine import create_engine as create_engine
from ._engine.result import AsyncResult as AsyncResult
from ._engine.result import MappingResult as MappingResult
from ._engine.result import Result as Result
from ._engine.result import Row as Row
from ._engine.result import RowMapping as RowMapping
from ._engine.result import ScalarResult as ScalarResult
from ._engine.url import URL as URL
from ._engine.url import make_url as make_url

# --- end engine layer ---

# --- SQL layer (asyncorm._sql) re-exports: keep this block sorted ---
# isort: split
from ._sql.dml import delete as delete
from ._sql.dml import insert as insert
from ._sql.dml import update as update
from ._sql.elements import and_ as and_
from ._sql.elements import asc as asc
from ._sql.elements import bindparam as bindparam
from ._sql.elements import cast as cast
from ._sql.elements import desc as desc
from ._sql.elements import false as false
from ._sql.elements import func as func
from ._sql.elements import literal as literal
from ._sql.elements import literal_column as literal_column
from ._sql.elements import not_ as not_
from ._sql.elements import null as null
from ._sql.elements import or_ as or_
from ._sql.elements import text as text
from ._sql.elements import true as true
from ._sql.schema import CheckConstraint as CheckConstraint
from ._sql.schema import Column as Column
from ._sql.schema import ForeignKey as ForeignKey
from ._sql.schema import ForeignKeyConstraint as ForeignKeyConstraint
from ._sql.schema import Index as Index
from ._sql.schema import MetaData as MetaData
from ._sql.schema import PrimaryKeyConstraint as PrimaryKeyConstraint
from ._sql.schema import Table as Table
from ._sql.schema import UniqueConstraint as UniqueConstraint
from ._sql.selectable import exists as exists
from ._sql.selectable import select as select
from ._sql.selectable import union as union
from ._sql.selectable import union_all as union_all
from ._sql.types import JSON as JSON
from ._sql.types import BigInteger as BigInteger
from ._sql.types import Boolean as Boolean
from ._sql.types import Date as Date
from ._sql.types import DateTime as DateTime
from ._sql.types import Enum as Enum
from ._sql.types import Float as Float
from ._sql.types import Integer as Integer
from ._sql.types import LargeBinary as LargeBinary
from ._sql.types import Numeric as Numeric
from ._sql.types import SmallInteger as SmallInteger
from ._sql.types import String as String
from ._sql.types import Text as Text
from ._sql.types import Time as Time
from ._sql.types import TypeEngine as TypeEngine
from ._sql.types import Uuid as Uuid

# isort: split
# --- end SQL layer ---

# --- ORM layer (asyncorm._orm) re-exports: keep this block sorted ---
from ._orm.decl import DeclarativeBase as DeclarativeBase
from ._orm.decl import Mapped as Mapped
from ._orm.decl import declarative_base as declarative_base
from ._orm.decl import mapped_column as mapped_column
from ._orm.inspection import inspect as inspect
from ._orm.relationships import configure_mappers as configure_mappers
from ._orm.relationships import relationship as relationship
from ._orm.scoping import async_scoped_session as async_scoped_session
from ._orm.session import AsyncSession as AsyncSession
from ._orm.session import async_sessionmaker as async_sessionmaker
from ._orm.session import object_session as object_session
from ._orm.strategies import joinedload as joinedload
from ._orm.strategies import raiseload as raiseload
from ._orm.strategies import selectinload as selectinload

# --- end ORM layer ---

__all__ = [
    "JSON",
    "URL",
    "AsyncConnection",
    "AsyncEngine",
    "AsyncResult",
    "AsyncSession",
    "AsyncTransaction",
    "BigInteger",
    "Boolean",
    "CheckConstraint",
    "Column",
    "Date",
    "DateTime",
    "DeclarativeBase",
    "Enum",
    "Float",
    "ForeignKey",
    "ForeignKeyConstraint",
    "Index",
    "Integer",
    "LargeBinary",
    "Mapped",
    "MappingResult",
    "MetaData",
    "Numeric",
    "PrimaryKeyConstraint",
    "Result",
    "Row",
    "RowMapping",
    "ScalarResult",
    "SmallInteger",
    "String",
    "Table",
    "Text",
    "Time",
    "TypeEngine",
    "UniqueConstraint",
    "Uuid",
    "and_",
    "asc",
    "async_scoped_session",
    "async_sessionmaker",
    "bindparam",
    "cast",
    "configure_mappers",
    "create_engine",
    "declarative_base",
    "delete",
    "desc",
    "event",
    "exc",
    "exists",
    "false",
    "func",
    "insert",
    "inspect",
    "joinedload",
    "literal",
    "literal_column",
    "make_url",
    "mapped_column",
    "not_",
    "null",
    "object_session",
    "or_",
    "raiseload",
    "relationship",
    "select",
    "selectinload",
    "text",
    "true",
    "union",
    "union_all",
    "update",
]
