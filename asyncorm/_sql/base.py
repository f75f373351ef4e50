"""Foundations shared by every SQL construct: dispatch, copying, column collections."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Self, TypeVar

from ..exc import ArgumentError
from .cache_key import AnonMap, MemoizedCacheKey

if TYPE_CHECKING:
    from .elements import BindParameter, ColumnElement

__all__ = ["ClauseElement", "ColumnCollection", "Executable", "Generative", "coerce_statement"]

_COL = TypeVar("_COL", bound="ColumnElement[Any]")


class ClauseElement:
    """Base of every SQL construct.

    Each subclass that names a ``__visit_name__`` gets a ``_compiler_dispatch`` bound to
    ``visit_<name>`` once, at class creation, so compiling never walks an isinstance ladder.
    """

    __visit_name__: ClassVar[str] = "clause"
    _is_clause_element: ClassVar[bool] = True
    _is_select_statement: ClassVar[bool] = False
    _is_from_clause: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__visit_name__" in cls.__dict__:
            method_name = "visit_" + cls.__visit_name__

            def _compiler_dispatch(self: ClauseElement, compiler: Any, **kw: Any) -> str:
                return getattr(compiler, method_name)(self, **kw)  # type: ignore[no-any-return]

            cls._compiler_dispatch = _compiler_dispatch  # type: ignore[method-assign]

    def _compiler_dispatch(self, compiler: Any, **kw: Any) -> str:
        raise NotImplementedError(f"{type(self).__name__} cannot be compiled")

    def _gen_cache_key(self, anon_map: AnonMap, binds: list[BindParameter[Any]]) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no cache key")

    def __str__(self) -> str:
        from .compiler import compile_for_display

        return compile_for_display(self)


class Generative:
    """Immutable objects whose methods return modified copies."""

    def _generate(self) -> Self:
        new = self.__class__.__new__(self.__class__)
        state = self.__dict__.copy()
        state.pop("_memoized_cache_key", None)
        state.pop("_memoized", None)
        new.__dict__ = state
        return new


class Executable(MemoizedCacheKey, Generative, ClauseElement):
    """A statement ``conn.execute()`` accepts."""

    _execution_options: dict[str, Any] = {}
    # Insert/update without .values() take their columns from the execution parameters,
    # so their compiled form depends on the parameter names too.
    _uses_param_keys: bool = False

    def execution_options(self, **options: Any) -> Self:
        """A copy with these execution options added (read by the engine and the ORM)."""
        new = self._generate()
        new._execution_options = {**self._execution_options, **options}
        return new

    def get_execution_options(self) -> dict[str, Any]:
        return dict(self._execution_options)


class ColumnCollection(Generic[_COL]):
    """Columns by key: ``table.c.name``, ``table.c["name"]``, ``table.c[0]``, iteration."""

    __slots__ = ("_columns", "_index")

    def __init__(self, columns: list[tuple[str, _COL]] | None = None) -> None:
        self._columns: list[_COL] = []
        self._index: dict[str, _COL] = {}
        for key, column in columns or ():
            self._add(key, column)

    def _add(self, key: str, column: _COL) -> None:
        if key in self._index:
            self._columns.remove(self._index[key])
        self._index[key] = column
        self._columns.append(column)

    def __getattr__(self, key: str) -> _COL:
        if key.startswith("__"):
            raise AttributeError(key)
        try:
            return self._index[key]
        except KeyError:
            raise AttributeError(
                f"no column {key!r}; the columns are {', '.join(self._index) or 'none'}"
            ) from None

    def __getitem__(self, key: str | int) -> _COL:
        if isinstance(key, int):
            return self._columns[key]
        try:
            return self._index[key]
        except KeyError:
            raise KeyError(
                f"no column {key!r}; the columns are {', '.join(self._index) or 'none'}"
            ) from None

    def get(self, key: str, default: Any = None) -> Any:
        return self._index.get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            return key in self._index
        return any(column is key for column in self._columns)

    def __iter__(self) -> Iterator[_COL]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)

    def keys(self) -> list[str]:
        return list(self._index)

    def values(self) -> list[_COL]:
        return list(self._columns)

    def items(self) -> list[tuple[str, _COL]]:
        return list(self._index.items())

    def __repr__(self) -> str:
        return f"<ColumnCollection {', '.join(self._index)}>"


def coerce_statement(statement: Any) -> Executable:
    """The statement ``execute()`` runs; a plain string is refused (it must be ``text()``)."""
    if isinstance(statement, Executable):
        return statement
    if isinstance(statement, str):
        raise ArgumentError(
            f"textual SQL must be wrapped in text(): conn.execute(text({statement!r}))"
        )
    clause_element = getattr(statement, "__clause_element__", None)
    if clause_element is not None:
        element = clause_element()
        if isinstance(element, Executable):
            return element
    raise ArgumentError(
        f"expected an executable statement (select(), insert(), text(), ...), got {statement!r}"
    )
