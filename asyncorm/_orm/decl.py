"""Declarative mapping: ``class User(Base)`` with ``Column`` or ``Mapped[...]`` attributes."""

from __future__ import annotations

import datetime
import decimal
import enum
import inspect
import sys
import types
import typing
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar, Union, overload

from .._sql import types as sqltypes
from .._sql.schema import Column, MetaData, Table
from ..exc import ArgumentError
from .mapper import Mapper, default_repr, mapper_of_class
from .state import instance_state

if TYPE_CHECKING:
    from .attributes import InstrumentedAttribute

_T = TypeVar("_T")


class Mapped(Generic[_T]):
    """The annotation of a mapped attribute: ``id: Mapped[int]``.

    For type checkers ``User.id`` is an ``InstrumentedAttribute[int]`` (a SQL expression)
    and ``user.id`` an ``int``.
    """

    if TYPE_CHECKING:

        @overload
        def __get__(self, instance: None, owner: Any) -> InstrumentedAttribute[_T]: ...
        @overload
        def __get__(self, instance: object, owner: Any) -> _T: ...
        def __get__(self, instance: object | None, owner: Any) -> Any: ...
        def __set__(self, instance: Any, value: _T) -> None: ...


class MappedColumn(Mapped[_T]):
    """What ``mapped_column()`` returns: the arguments of a Column still to be made, because
    its name, type and nullability may come from the attribute and its annotation."""

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self.args = args
        self.kwargs = kwargs

    def make_column(self, key: str, annotation: Any) -> Column[Any]:
        args = list(self.args)
        name = args.pop(0) if args and isinstance(args[0], str) else key
        kwargs = dict(self.kwargs)
        python_type, optional = _unwrap_annotation(annotation) if annotation else (None, False)
        has_type = args and (
            isinstance(args[0], sqltypes.TypeEngine)
            or (isinstance(args[0], type) and issubclass(args[0], sqltypes.TypeEngine))
        )
        if not has_type:
            if python_type is None:
                raise ArgumentError(
                    f"mapped_column() for {key!r} has no type: pass one "
                    f"(mapped_column(String(50))) or annotate the attribute (Mapped[str])"
                )
            args.insert(0, sql_type_for(python_type, key))
        if "nullable" not in kwargs and annotation is not None:
            kwargs["nullable"] = optional
        kwargs.setdefault("key", key)
        # Kept so class-body references (foreign_keys=[owner_id]) find the real column.
        self.column: Column[Any] = Column(name, *args, **kwargs)
        return self.column


def mapped_column(*args: Any, **kwargs: Any) -> MappedColumn[Any]:
    """Declare a column attribute; name, type and nullability default from the annotation.

    ``mapped_column(String(200))``, ``mapped_column("full_name", String)``,
    ``mapped_column(ForeignKey("users.id"))``, ``mapped_column(primary_key=True)``.
    """
    return MappedColumn(args, kwargs)


_PYTHON_TO_SQL: dict[type, Any] = {
    bool: sqltypes.Boolean,
    int: sqltypes.Integer,
    float: sqltypes.Float,
    str: sqltypes.String,
    bytes: sqltypes.LargeBinary,
    decimal.Decimal: sqltypes.Numeric,
    datetime.datetime: sqltypes.DateTime,
    datetime.date: sqltypes.Date,
    datetime.time: sqltypes.Time,
    uuid.UUID: sqltypes.Uuid,
    dict: sqltypes.JSON,
    list: sqltypes.JSON,
}


def sql_type_for(python_type: Any, key: str) -> sqltypes.TypeEngine[Any]:
    origin = typing.get_origin(python_type) or python_type
    if isinstance(origin, type) and issubclass(origin, enum.Enum):
        return sqltypes.Enum(origin)
    for candidate, sql_type in _PYTHON_TO_SQL.items():
        if origin is candidate:
            return sql_type()  # type: ignore[no-any-return]
    raise ArgumentError(
        f"cannot infer a column type for {key!r} from {python_type!r}; pass one, e.g. "
        "mapped_column(String(50))"
    )


def _unwrap_annotation(annotation: Any) -> tuple[Any, bool]:
    """``Mapped[int | None]`` -> ``(int, True)``."""
    inner = annotation
    if typing.get_origin(inner) is Mapped or _is_mapped_subclass(typing.get_origin(inner)):
        inner = typing.get_args(inner)[0]
    origin = typing.get_origin(inner)
    if origin is Union or origin is types.UnionType:
        members = [arg for arg in typing.get_args(inner) if arg is not type(None)]
        optional = len(members) < len(typing.get_args(inner))
        return (members[0] if len(members) == 1 else inner), optional
    return inner, False


def _is_mapped_subclass(origin: Any) -> bool:
    return isinstance(origin, type) and issubclass(origin, Mapped)


def _evaluate_annotations(cls: type) -> dict[str, Any]:
    """The class's own annotations, with strings evaluated where they can be.

    An annotation naming a class that does not exist yet (``Mapped["Address"]``) stays a
    string; relationships resolve such names when the mappers are configured.
    """
    raw = inspect.get_annotations(cls)
    module = sys.modules.get(cls.__module__)
    namespace = {**(vars(module) if module else {}), "Mapped": Mapped, **dict(vars(cls))}
    evaluated: dict[str, Any] = {}
    for name, annotation in raw.items():
        if isinstance(annotation, str):
            try:
                annotation = eval(annotation, namespace)
            except Exception:
                pass
        evaluated[name] = annotation
    return evaluated


def _is_mapped_annotation(annotation: Any) -> bool:
    if isinstance(annotation, str):
        return annotation.replace(" ", "").startswith("Mapped[")
    origin = typing.get_origin(annotation)
    return origin is Mapped or _is_mapped_subclass(origin)


class DeclarativeBase:
    """Subclass once to make your base; subclasses with ``__tablename__`` are mapped.

    ``class Base(DeclarativeBase): pass`` (optionally with ``metadata = MetaData(...)``).
    """

    # The object's ORM state sits in a slot, not in ``__dict__``: a ``__dict__`` holding
    # only plain values is not tracked by the cyclic garbage collector, so each loaded
    # object costs the collector two containers (itself and its state), not three.
    # Subclasses get their ``__dict__`` and ``__weakref__`` as usual; a mixin may declare
    # ``__slots__ = ()`` but no slots of its own (Python allows one slotted base).
    __slots__ = ("_asyncorm_state",)

    metadata: ClassVar[MetaData]
    __table__: ClassVar[Table]
    __tablename__: ClassVar[str]
    __mapper__: ClassVar[Mapper]
    __table_args__: ClassVar[Any]

    def __init__(self, **kwargs: Any) -> None:
        """Keyword arguments for mapped attributes; an unknown keyword raises TypeError.

        Mapped classes get a generated, faster ``__init__`` with the same behaviour; this
        one serves classes that define their own ``__init__`` and call ``super()``.
        """
        mapper = mapper_of_class(type(self))
        if mapper is None:
            raise TypeError(f"{type(self).__name__} is not mapped")
        mapper.new_state(self)
        for key, value in kwargs.items():
            if key not in mapper.columns and key not in mapper.relationships:
                raise TypeError(f"{key!r} is an invalid keyword argument for {type(self).__name__}")
            setattr(self, key, value)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if DeclarativeBase in cls.__bases__:
            _set_up_base(cls)
        elif not cls.__dict__.get("__abstract__", False):
            _map_class(cls)

    __repr__ = default_repr

    def __getstate__(self) -> dict[str, Any]:
        """What ``pickle`` and ``copy`` take: the attribute values and the row's identity,
        never the ORM state (it refers to this object and its session). So a copy is
        detached, or transient if this object is, with a state of its own; put it in a
        session with ``obj = await session.merge(copy)``."""
        state = instance_state(self)
        expired = None if state.expired is None else frozenset(state.expired)
        return {"values": dict(self.__dict__), "key": state.key, "expired": expired}

    def __setstate__(self, saved: dict[str, Any]) -> None:
        mapper = mapper_of_class(type(self))
        if mapper is None:
            raise TypeError(f"{type(self).__name__} is not mapped")
        state = mapper.new_state(self)
        state.key, state.expired = saved["key"], saved["expired"]
        values = saved["values"]
        for key, relationship in mapper.relationships.items():
            items = values.get(key)
            if relationship.uselist and isinstance(items, list):
                # pickled as a plain list: instrumented again, for this owner
                values[key] = relationship._new_collection(self, items)
        self.__dict__.update(values)

    @classmethod
    def __clause_element__(cls) -> Table:
        return cls.__table__


class Registry:
    """The mapped classes of one declarative base, by name, for string references."""

    def __init__(self, metadata: MetaData) -> None:
        self.metadata = metadata
        self.classes: dict[str, type] = {}
        self.mappers: list[Mapper] = []

    def add(self, mapper: Mapper) -> None:
        name = mapper.class_.__name__
        if name in self.classes and self.classes[name] is not mapper.class_:
            existing = self.classes[name]
            if (existing.__module__, existing.__qualname__) != (
                mapper.class_.__module__,
                mapper.class_.__qualname__,
            ):
                self.classes[f"{mapper.class_.__module__}.{name}"] = mapper.class_
        self.classes[name] = mapper.class_
        self.mappers.append(mapper)


def _set_up_base(base: type) -> None:
    metadata = base.__dict__.get("metadata")
    if metadata is None:
        metadata = MetaData()
    elif not isinstance(metadata, MetaData):
        raise ArgumentError(f"{base.__name__}.metadata must be a MetaData, not {metadata!r}")
    base.metadata = metadata  # type: ignore[attr-defined]
    base.registry = Registry(metadata)  # type: ignore[attr-defined]


def _declarative_base_of(cls: type) -> type:
    for klass in cls.__mro__:
        if DeclarativeBase in klass.__bases__:
            return klass
    raise ArgumentError(f"{cls.__name__} does not derive from a DeclarativeBase")


def _map_class(cls: type) -> None:
    if mapper_of_class(cls) is not None and "__tablename__" not in cls.__dict__:
        raise ArgumentError(
            f"{cls.__name__} subclasses the mapped class {cls.__mro__[1].__name__}; "
            "inheritance mapping is not supported, use a mixin or __abstract__ = True base"
        )
    if "__tablename__" not in cls.__dict__ and "__table__" not in cls.__dict__:
        raise ArgumentError(
            f"{cls.__name__} needs __tablename__ (or __table__) to be mapped, or "
            "__abstract__ = True to be a base for mapped classes"
        )
    from .relationships import Relationship

    base = _declarative_base_of(cls)
    metadata: MetaData = base.metadata  # type: ignore[attr-defined]
    registry: Registry = base.registry  # type: ignore[attr-defined]

    annotations: dict[str, Any] = {}
    namespace: dict[str, Any] = {}
    for klass in reversed(cls.__mro__[: cls.__mro__.index(base)]):
        if klass is not cls and mapper_of_class(klass) is not None:
            continue
        annotations.update(_evaluate_annotations(klass))
        namespace.update(
            {
                k: v
                for k, v in vars(klass).items()
                if isinstance(v, Column | MappedColumn | Relationship)
            }
        )

    columns: dict[str, Column[Any]] = {}
    relationships: dict[str, Relationship[Any]] = {}
    order = [*annotations, *(name for name in namespace if name not in annotations)]
    for key in order:
        value = namespace.get(key)
        annotation = annotations.get(key)
        if isinstance(value, Relationship):
            if klass_owns(cls, key, value):
                relationships[key] = value
            else:
                relationships[key] = value.copy()
            relationships[key].declare(key, annotation)
        elif isinstance(value, MappedColumn):
            columns[key] = value.make_column(key, annotation)
        elif isinstance(value, Column):
            columns[key] = value._with_default_name(key)
        elif value is None and annotation is not None and _is_mapped_annotation(annotation):
            if _looks_like_relationship(annotation):
                raise ArgumentError(
                    f"{cls.__name__}.{key} is annotated {annotation!r} but has no "
                    "relationship(); add `= relationship(...)`"
                )
            columns[key] = MappedColumn((), {}).make_column(key, annotation)

    table: Table
    if "__table__" in cls.__dict__:
        table = cls.__dict__["__table__"]
        columns = {column.key: column for column in table.columns}
    else:
        args, kwargs = _table_args(cls)
        table = Table(cls.__dict__["__tablename__"], metadata, *columns.values(), *args, **kwargs)
        columns = {column.key: column for column in table.columns}

    mapper = Mapper(cls, table, columns)
    mapper.relationships = relationships
    cls.__mapper__ = mapper  # type: ignore[attr-defined]
    cls.__table__ = table  # type: ignore[attr-defined]
    from .attributes import InstrumentedAttribute

    for key, column in columns.items():
        attribute: InstrumentedAttribute[Any] = InstrumentedAttribute(mapper, key, column)
        mapper.attributes[key] = attribute
        setattr(cls, key, attribute)
    for key, relationship in relationships.items():
        relationship.bind_to(mapper)
        setattr(cls, key, relationship.make_attribute())
    if "__init__" not in cls.__dict__:
        cls.__init__ = mapper.build_init()  # type: ignore[misc]
    registry.add(mapper)


def klass_owns(cls: type, key: str, value: object) -> bool:
    return cls.__dict__.get(key) is value


def _looks_like_relationship(annotation: Any) -> bool:
    inner = annotation
    if isinstance(inner, str):
        return True
    inner, _ = _unwrap_annotation(inner)
    origin = typing.get_origin(inner)
    if origin in (list, set) or isinstance(inner, typing.ForwardRef | str):
        return True
    return mapper_of_class(inner) is not None if isinstance(inner, type) else False


def _table_args(cls: type) -> tuple[tuple[Any, ...], dict[str, Any]]:
    table_args = getattr(cls, "__table_args__", None)
    if table_args is None:
        return (), {}
    if isinstance(table_args, dict):
        return (), dict(table_args)
    if isinstance(table_args, tuple):
        if table_args and isinstance(table_args[-1], dict):
            return table_args[:-1], dict(table_args[-1])
        return table_args, {}
    raise ArgumentError(
        f"{cls.__name__}.__table_args__ must be a tuple (optionally ending in a dict) or a dict"
    )


def declarative_base(*, metadata: MetaData | None = None, name: str = "Base") -> type[Any]:
    """The classic factory: ``Base = declarative_base()``."""
    namespace: dict[str, Any] = {"__module__": __name__}
    if metadata is not None:
        namespace["metadata"] = metadata
    return type(name, (DeclarativeBase,), namespace)
