"""Schema objects: MetaData, Table, Column, keys, constraints and indexes."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ..exc import ArgumentError
from . import types as sqltypes
from .base import ClauseElement, ColumnCollection
from .cache_key import AnonMap
from .elements import BindParameter, ColumnClause, ColumnElement
from .selectable import FromClause

if TYPE_CHECKING:
    from .ddl import DDLRunner
    from .dml import Delete, Insert, Update
    from .selectable import Select

__all__ = [
    "CheckConstraint",
    "Column",
    "ColumnDefault",
    "Constraint",
    "ForeignKey",
    "ForeignKeyConstraint",
    "Index",
    "MetaData",
    "PrimaryKeyConstraint",
    "Table",
    "UniqueConstraint",
]

_T = TypeVar("_T")

DEFAULT_NAMING_CONVENTION: dict[str, str] = {"ix": "ix_%(column_0_label)s"}


class MetaData:
    """A collection of tables, with the naming convention for their constraints and indexes.

    ``naming_convention`` maps ``"ix"``, ``"uq"``, ``"fk"``, ``"pk"``, ``"ck"`` to templates
    using ``%(table_name)s``, ``%(column_0_name)s``, ``%(column_0_label)s``,
    ``%(column_0_N_name)s``, ``%(referred_table_name)s``, ``%(referred_column_0_name)s`` and
    ``%(constraint_name)s``.
    """

    def __init__(self, naming_convention: dict[str, str] | None = None) -> None:
        self.tables: dict[str, Table] = {}
        self.naming_convention = (
            dict(naming_convention)
            if naming_convention is not None
            else dict(DEFAULT_NAMING_CONVENTION)
        )

    def __contains__(self, name: object) -> bool:
        return name in self.tables

    def __repr__(self) -> str:
        return f"MetaData(tables={list(self.tables)})"

    @property
    def sorted_tables(self) -> list[Table]:
        """The tables in foreign-key dependency order (referred tables first)."""
        from .ddl import sort_tables

        return sort_tables(self.tables.values())

    def remove(self, table: Table) -> None:
        self.tables.pop(table.key, None)

    def clear(self) -> None:
        self.tables.clear()

    async def create_all(
        self, bind: DDLRunner, tables: Sequence[Table] | None = None, checkfirst: bool = True
    ) -> None:
        """``CREATE TABLE`` / ``CREATE INDEX ... IF NOT EXISTS`` in foreign-key order.

        ``bind`` is an engine or a connection (anything with ``_run_ddl``).
        """
        from .ddl import create_statements

        await bind._run_ddl(create_statements(tables or list(self.tables.values()), checkfirst))

    async def drop_all(
        self, bind: DDLRunner, tables: Sequence[Table] | None = None, checkfirst: bool = True
    ) -> None:
        """``DROP TABLE IF EXISTS`` in reverse foreign-key order."""
        from .ddl import drop_statements

        await bind._run_ddl(drop_statements(tables or list(self.tables.values()), checkfirst))


class ColumnDefault:
    """A Python-side ``default=`` / ``onupdate=``: a value, or a callable applied per row.

    A callable may take no arguments, or one: a context whose ``current_parameters`` is the
    row's parameters.
    """

    def __init__(self, arg: Any) -> None:
        self.arg = arg
        self.is_clause_element = isinstance(arg, ClauseElement)
        self.is_callable = callable(arg) and not self.is_clause_element
        self.is_scalar = not self.is_callable and not self.is_clause_element
        self.takes_context = self.is_callable and _takes_an_argument(arg)

    def evaluate(self, parameters: Any = None) -> Any:
        """The value for one row whose parameters are ``parameters``."""
        if self.is_scalar:
            return self.arg
        if self.takes_context:
            return self.arg(_DefaultContext(parameters or {}))
        return self.arg()

    def __repr__(self) -> str:
        return f"ColumnDefault({self.arg!r})"


class _DefaultContext:
    __slots__ = ("current_parameters",)

    def __init__(self, current_parameters: Any) -> None:
        self.current_parameters = current_parameters

    def get_current_parameters(self) -> Any:
        return self.current_parameters


def _takes_an_argument(fn: Callable[..., Any]) -> bool:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    for parameter in signature.parameters.values():
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            if parameter.default is parameter.empty:
                return True
        elif parameter.kind is parameter.VAR_POSITIONAL:
            return True
    return False


class Column(ColumnClause[_T]):
    """A table column: ``Column("id", Integer, primary_key=True)``.

    The name may be left out when a declarative class gives it (``id = Column(Integer)``),
    and the type when a ``ForeignKey`` implies it (the referred column's type).
    """

    __visit_name__ = "column"

    @overload
    def __init__(
        self,
        name: str,
        type_: sqltypes.TypeEngine[_T] | type[sqltypes.TypeEngine[_T]],
        *args: SchemaItem,
        **kwargs: Any,
    ) -> None: ...

    @overload
    def __init__(
        self,
        type_: sqltypes.TypeEngine[_T] | type[sqltypes.TypeEngine[_T]],
        *args: SchemaItem,
        **kwargs: Any,
    ) -> None: ...

    @overload
    def __init__(self, name: str, *args: SchemaItem, **kwargs: Any) -> None: ...

    @overload
    def __init__(self, *args: SchemaItem, **kwargs: Any) -> None: ...

    def __init__(
        self,
        *args: Any,
        primary_key: bool = False,
        nullable: bool | None = None,
        autoincrement: bool | str = "auto",
        unique: bool | None = None,
        index: bool | None = None,
        default: Any = None,
        onupdate: Any = None,
        server_default: Any = None,
        key: str | None = None,
        doc: str | None = None,
        comment: str | None = None,
        info: dict[str, Any] | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ArgumentError(f"Column() got unknown options {sorted(unknown)}")
        items = list(args)
        name: str | None = items.pop(0) if items and isinstance(items[0], str) else None
        type_: Any = None
        if items and (
            isinstance(items[0], sqltypes.TypeEngine)
            or (isinstance(items[0], type) and issubclass(items[0], sqltypes.TypeEngine))
        ):
            type_ = items.pop(0)
        # Declarative mapping names a nameless column after its attribute before the
        # column joins a table; until then name and key are None.
        self.name = name  # type: ignore[assignment]
        self.key = key or name  # type: ignore[assignment]
        self._result_name = name
        self._bind_name_hint = self.key or "param"
        self._explicit_key = key is not None
        self._type = sqltypes.to_instance(type_)
        self.table: Table | None = None
        self.is_literal = False
        self._proxied = None
        self.primary_key = primary_key
        self.nullable = (not primary_key) if nullable is None else nullable
        if autoincrement not in (True, False, "auto"):
            raise ArgumentError("autoincrement is True, False or 'auto'")
        self.autoincrement = autoincrement
        self.unique = unique
        self.index = index
        self.default = ColumnDefault(default) if default is not None else None
        self.onupdate = ColumnDefault(onupdate) if onupdate is not None else None
        self.server_default = server_default
        self.doc = doc
        self.comment = comment
        self.info = dict(info or {})
        self.foreign_keys: list[ForeignKey] = []
        self._constructor_args = (args, primary_key, nullable, autoincrement, unique, index)
        self._constructor_kwargs = {
            "default": default,
            "onupdate": onupdate,
            "server_default": server_default,
            "key": key,
            "doc": doc,
            "comment": comment,
            "info": info,
        }
        for item in items:
            if isinstance(item, ForeignKey):
                item._set_parent(self)
                self.foreign_keys.append(item)
            else:
                raise ArgumentError(
                    f"Column() takes a name, a type and ForeignKey objects, got {item!r}"
                )
        self._static_key: Any = None

    @property
    def type(self) -> sqltypes.TypeEngine[Any]:
        if self._type is sqltypes.NULLTYPE and self.foreign_keys:
            try:
                self._type = self.foreign_keys[0].column.type
            except ArgumentError:
                pass
        return self._type

    @type.setter
    def type(self, value: sqltypes.TypeEngine[Any]) -> None:
        self._type = value

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        key = self._static_key
        if key is None:
            if self.table is None:
                return ("column", self.name, self.type._cache_key)
            key = self._static_key = (self.table, self.name)
        return key

    def _set_table(self, table: Table) -> None:
        if self.table is not None and self.table is not table:
            raise ArgumentError(
                f"column {self.name!r} already belongs to table {self.table.name!r}; "
                "make a new Column for each table"
            )
        if self.name is None:
            raise ArgumentError("a Column needs a name before it joins a Table")
        self.table = table
        self._static_key = None

    def _with_default_name(self, key: str) -> Column[_T]:
        """Used by declarative mapping: name (and key) this column after its attribute."""
        column = self._copy() if self.table is not None else self
        if column.name is None:
            column.name = column._result_name = key
        if not column._explicit_key:
            column.key = column._bind_name_hint = key
        return column

    def _copy(self) -> Column[_T]:
        """An unattached copy with the same definition (for mixins used by several tables)."""
        args, primary_key, nullable, autoincrement, unique, index = self._constructor_args
        copied_args = [
            ForeignKey(a._target_spec, ondelete=a.ondelete, onupdate=a.onupdate, name=a.name)
            if isinstance(a, ForeignKey)
            else a
            for a in args
        ]
        return Column(
            *copied_args,
            primary_key=primary_key,
            nullable=nullable,
            autoincrement=autoincrement,
            unique=unique,
            index=index,
            **self._constructor_kwargs,
        )

    def references(self, column: Column[Any]) -> bool:
        return any(fk.column is column for fk in self.foreign_keys)

    @property
    def _autoincrements(self) -> bool:
        """Whether the database generates this column's values (identity / AUTOINCREMENT)."""
        table = self.table
        return table is not None and table._autoincrement_column is self

    def __repr__(self) -> str:
        table = f"{self.table.name}." if self.table is not None else ""
        return f"Column({table}{self.name}, {self.type!r})"


class SchemaItem:
    """Base of the objects a Table or Column takes besides columns: keys, constraints."""


class ForeignKey(SchemaItem):
    """A column's reference to another column: ``ForeignKey("users.id", ondelete="CASCADE")``."""

    def __init__(
        self,
        column: str | Column[Any],
        *,
        ondelete: str | None = None,
        onupdate: str | None = None,
        name: str | None = None,
    ) -> None:
        self._target_spec = column
        self.ondelete = ondelete
        self.onupdate = onupdate
        self.name = name
        self.parent: Column[Any] = None  # type: ignore[assignment]
        self.constraint: ForeignKeyConstraint = None  # type: ignore[assignment]
        self._resolved: Column[Any] | None = column if isinstance(column, Column) else None

    def _set_parent(self, column: Column[Any]) -> None:
        self.parent = column

    @property
    def target_fullname(self) -> str:
        spec = self._target_spec
        if isinstance(spec, str):
            return spec
        return f"{spec.table.name if spec.table is not None else '?'}.{spec.name}"

    @property
    def column(self) -> Column[Any]:
        """The referred column, looked up in the parent table's MetaData on first use."""
        if self._resolved is not None:
            return self._resolved
        spec = self.target_fullname
        table_name, _, column_name = spec.rpartition(".")
        parent_table = self.parent.table if self.parent is not None else None
        if parent_table is None:
            raise ArgumentError(f"ForeignKey({spec!r}) is not attached to a table yet")
        table = parent_table.metadata.tables.get(table_name)
        if table is None:
            raise ArgumentError(
                f"ForeignKey({spec!r}) of {parent_table.name}.{self.parent.name} refers to "
                f"table {table_name!r}, which is not in the same MetaData"
            )
        # "table.column" names the column in the database; the key (a mapped column's
        # attribute name, when it differs) is accepted too.
        named = [column for column in table.c if column.name == column_name]
        if named:
            self._resolved = named[0]
        elif column_name in table.c:
            self._resolved = table.c[column_name]
        else:
            raise ArgumentError(f"ForeignKey({spec!r}): table {table_name!r} has no such column")
        return self._resolved

    def __repr__(self) -> str:
        return f"ForeignKey({self.target_fullname!r})"


class Constraint(SchemaItem):
    """A table constraint; ``name=None`` takes the MetaData's naming convention, if any."""

    _convention_key = ""

    def __init__(self, *columns: str | Column[Any], name: str | None = None) -> None:
        self._column_specs = columns
        self.name = name
        self.table: Table = None  # type: ignore[assignment]
        self.columns: list[Column[Any]] = []

    def _set_table(self, table: Table) -> None:
        self.table = table
        self.columns = [table._resolve_column(spec) for spec in self._column_specs]

    def __iter__(self) -> Iterator[Column[Any]]:
        return iter(self.columns)

    def __len__(self) -> int:
        return len(self.columns)

    def __contains__(self, column: object) -> bool:
        return any(own is column for own in self.columns)


class PrimaryKeyConstraint(Constraint):
    """The primary key; iterating it gives its columns."""

    _convention_key = "pk"


class UniqueConstraint(Constraint):
    """``UNIQUE (columns)``."""

    _convention_key = "uq"


class CheckConstraint(Constraint):
    """``CHECK (sqltext)``; the SQL text is rendered as given."""

    _convention_key = "ck"

    def __init__(self, sqltext: str, name: str | None = None) -> None:
        super().__init__(name=name)
        self.sqltext = sqltext


class ForeignKeyConstraint(Constraint):
    """A (possibly composite) foreign key: ``ForeignKeyConstraint(["a", "b"], ["t.a", "t.b"])``."""

    _convention_key = "fk"

    def __init__(
        self,
        columns: Sequence[str | Column[Any]],
        refcolumns: Sequence[str | Column[Any]],
        *,
        name: str | None = None,
        ondelete: str | None = None,
        onupdate: str | None = None,
    ) -> None:
        if len(columns) != len(refcolumns):
            raise ArgumentError("ForeignKeyConstraint needs as many refcolumns as columns")
        super().__init__(*columns, name=name)
        self.ondelete = ondelete
        self.onupdate = onupdate
        self.elements = [
            ForeignKey(ref, ondelete=ondelete, onupdate=onupdate, name=name) for ref in refcolumns
        ]
        for element in self.elements:
            element.constraint = self

    def _set_table(self, table: Table) -> None:
        super()._set_table(table)
        for column, element in zip(self.columns, self.elements, strict=True):
            element._set_parent(column)
            if element not in column.foreign_keys:
                column.foreign_keys.append(element)

    @property
    def referred_table(self) -> Table:
        table = self.elements[0].column.table
        assert table is not None
        return table


class Index(SchemaItem):
    """``CREATE INDEX name ON table (columns)``: ``Index("ix_name", users.c.name)``."""

    def __init__(self, name: str | None, *columns: str | Column[Any], unique: bool = False) -> None:
        self.name = name
        self.unique = unique
        self._column_specs = columns
        self.columns: list[Column[Any]] = []
        self.table: Table | None = None
        if columns and all(isinstance(c, Column) and c.table is not None for c in columns):
            first = columns[0]
            assert isinstance(first, Column) and first.table is not None
            first.table._add_index(self)

    def _set_table(self, table: Table) -> None:
        self.table = table
        self.columns = [table._resolve_column(spec) for spec in self._column_specs]

    def __repr__(self) -> str:
        return f"Index({self.name!r}, {', '.join(c.name for c in self.columns)})"


class Table(FromClause):
    """A database table: ``Table("users", metadata, Column(...), ..., Index(...))``.

    ``table.c`` holds the columns; ``primary_key``, ``foreign_keys``, ``constraints`` and
    ``indexes`` describe the rest.
    """

    __visit_name__ = "table"
    name: str

    def __init__(
        self,
        name: str,
        metadata: MetaData,
        *items: Column[Any] | SchemaItem,
        schema: str | None = None,
        comment: str | None = None,
        info: dict[str, Any] | None = None,
        **unknown: Any,
    ) -> None:
        if unknown:
            raise ArgumentError(f"Table() got unknown options {sorted(unknown)}")
        if not isinstance(metadata, MetaData):
            raise ArgumentError(
                "Table(name, metadata, *columns): the second argument is a MetaData"
            )
        self.name = name
        self.schema = schema
        self.key = f"{schema}.{name}" if schema else name
        self.fullname = self.key
        self.metadata = metadata
        self.comment = comment
        self.info = dict(info or {})
        if self.key in metadata.tables:
            raise ArgumentError(f"table {self.key!r} is already defined in this MetaData")
        columns: ColumnCollection[Column[Any]] = ColumnCollection()
        self.__dict__["_columns"] = columns
        self.constraints: list[Constraint] = []
        self.indexes: list[Index] = []
        self.primary_key = PrimaryKeyConstraint()
        self.primary_key._set_table(self)
        explicit_primary_key = False
        later: list[SchemaItem] = []
        for item in items:
            if isinstance(item, Column):
                self._add_column(item)
            elif isinstance(item, SchemaItem):
                later.append(item)
            else:
                raise ArgumentError(f"Table() takes columns and constraints, got {item!r}")
        for item in later:
            if isinstance(item, PrimaryKeyConstraint):
                item._set_table(self)
                for column in item.columns:
                    column.primary_key = True
                    column.nullable = False
                self.primary_key = item
                explicit_primary_key = True
            elif isinstance(item, Constraint):
                item._set_table(self)
                self.constraints.append(item)
            elif isinstance(item, Index):
                self._add_index(item)
            else:
                raise ArgumentError(f"Table() cannot take {item!r}")
        if not explicit_primary_key:
            self.primary_key.columns = [c for c in columns if c.primary_key]
        if self.primary_key not in self.constraints:
            self.constraints.insert(0, self.primary_key)
        for column in columns:
            for fk in column.foreign_keys:
                if fk.constraint is None:
                    constraint = ForeignKeyConstraint(
                        [column],
                        [fk._target_spec],
                        name=fk.name,
                        ondelete=fk.ondelete,
                        onupdate=fk.onupdate,
                    )
                    constraint.elements = [fk]
                    fk.constraint = constraint
                    constraint.table = self
                    constraint.columns = [column]
                    self.constraints.append(constraint)
            if column.unique:
                unique = UniqueConstraint(column)
                unique._set_table(self)
                self.constraints.append(unique)
            if column.index:
                self._add_index(Index(None, column, unique=False))
        metadata.tables[self.key] = self

    def _add_column(self, column: Column[Any]) -> None:
        column._set_table(self)
        self.c._add(column.key, column)

    def _add_index(self, index: Index) -> None:
        if index.table is None:
            index._set_table(self)
            self.indexes.append(index)

    def _resolve_column(self, spec: str | Column[Any]) -> Column[Any]:
        if isinstance(spec, Column):
            return spec
        for column in self.c:
            if column.key == spec or getattr(column, "name", None) == spec:
                return column
        raise ArgumentError(f"table {self.name!r} has no column {spec!r}")

    @property
    def c(self) -> ColumnCollection[Column[Any]]:  # type: ignore[override]
        return self.__dict__["_columns"]  # type: ignore[no-any-return]

    @property
    def columns(self) -> ColumnCollection[Column[Any]]:  # type: ignore[override]
        return self.c

    @property
    def foreign_keys(self) -> list[ForeignKey]:
        # Memoised once the table is complete (it is read on every inferred join).
        found = self.__dict__.get("_foreign_keys")
        if found is None:
            found = [fk for column in self.c for fk in column.foreign_keys]
            if self.key in self.metadata.tables:
                self.__dict__["_foreign_keys"] = found
        return found

    @property
    def foreign_key_constraints(self) -> list[ForeignKeyConstraint]:
        return [c for c in self.constraints if isinstance(c, ForeignKeyConstraint)]

    @property
    def _autoincrement_column(self) -> Column[Any] | None:
        """The single integer primary-key column whose values the database generates."""
        memo = self.__dict__.get("_autoincrement_memo", False)
        if memo is not False:
            return memo  # type: ignore[no-any-return]
        found: Column[Any] | None = None
        pk = self.primary_key.columns
        if len(pk) == 1:
            column = pk[0]
            if column.type._is_integer and (
                column.autoincrement is True
                or (
                    column.autoincrement == "auto"
                    and not column.foreign_keys
                    and column.server_default is None
                    and column.default is None
                )
            ):
                found = column
        self.__dict__["_autoincrement_memo"] = found
        return found

    def corresponding_column(self, column: ColumnElement[Any]) -> ColumnElement[Any] | None:
        return column if getattr(column, "table", None) is self else None

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return self

    def _from_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        return self

    def insert(self) -> Insert:
        from .dml import insert

        return insert(self)

    def update(self) -> Update:
        from .dml import update

        return update(self)

    def delete(self) -> Delete:
        from .dml import delete

        return delete(self)

    def select(self) -> Select[Any]:
        from .selectable import select

        return select(self)

    def __repr__(self) -> str:
        return f"Table({self.name!r}, {', '.join(c.name for c in self.c)})"


def constraint_name(item: Constraint | Index, convention: dict[str, str]) -> str | None:
    """The name a constraint or index gets: its own, or the one the convention makes."""
    key = "ix" if isinstance(item, Index) else item._convention_key
    template = convention.get(key)
    name = item.name
    if template is None:
        return name
    if name is not None and "%(constraint_name)s" not in template:
        return name
    if name is None and "%(constraint_name)s" in template:
        return None
    table = item.table
    assert table is not None
    columns = list(item.columns)
    tokens: dict[str, str] = {
        "table_name": table.name,
        "constraint_name": name or "",
        "column_0_name": columns[0].name if columns else "",
        "column_0_label": f"{table.name}_{columns[0].name}" if columns else table.name,
        "column_0N_name": "".join(c.name for c in columns),
        "column_0_N_name": "_".join(c.name for c in columns),
        "column_0N_label": "".join(f"{table.name}_{c.name}" for c in columns),
        "column_0_N_label": "_".join(f"{table.name}_{c.name}" for c in columns),
        "column_0_key": columns[0].key if columns else "",
    }
    if isinstance(item, ForeignKeyConstraint):
        referred = [element.column for element in item.elements]
        tokens["referred_table_name"] = item.referred_table.name
        tokens["referred_column_0_name"] = referred[0].name
        tokens["referred_column_0N_name"] = "".join(c.name for c in referred)
        tokens["referred_column_0_N_name"] = "_".join(c.name for c in referred)
    try:
        return template % tokens
    except KeyError as error:
        raise ArgumentError(
            f"naming convention {template!r} uses {error.args[0]!r}, which a {key} lacks"
        ) from None
