"""Explicit eager loading: ``selectinload``, ``joinedload``, ``raiseload``, chained.

Relationships are never loaded on attribute access; these options (or a relationship's
``lazy="selectin"``/``"joined"`` default, or ``session.refresh(obj, [name])``) load them
together with the query that loads their parents.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._sql.elements import LabelReference, UnaryExpression, and_, or_
from .._sql.selectable import select
from ..exc import ArgumentError
from .relationships import (
    MANY_TO_MANY,
    MANY_TO_ONE,
    Relationship,
    RelationshipAttribute,
    configure_mappers,
)
from .state import NO_VALUE, instance_state

if TYPE_CHECKING:
    from .._engine.result import Result
    from .session import AsyncSession

#: Keys per ``IN`` list. PostgreSQL binds the list as one array, so this only bounds SQLite,
#: whose default limit is 32766 variables per statement.
SELECTIN_CHUNK = 30_000
#: Keys per query for a composite key, matched by ``(a = ? AND b = ?) OR ...``.
COMPOSITE_CHUNK = 500


@dataclass(frozen=True)
class _Step:
    relationship: Relationship[Any]
    strategy: str  # "selectin" | "joined" | "raise"
    innerjoin: bool = False


class LoaderOption:
    """A path of relationships and how to load each: ``selectinload(A.b).joinedload(B.c)``."""

    def __init__(self, steps: tuple[_Step, ...]) -> None:
        self.steps = steps

    @property
    def _cache_key(self) -> tuple[Any, ...]:
        return tuple(
            ("loader", id(step.relationship), step.strategy, step.innerjoin) for step in self.steps
        )

    def _then(self, attribute: Any, strategy: str, innerjoin: bool = False) -> LoaderOption:
        step = _step(attribute, strategy, innerjoin)
        previous = self.steps[-1].relationship
        if step.relationship.parent is not previous.target:
            raise ArgumentError(
                f"{attribute!r} does not start from {previous.target.class_.__name__}, where "
                f"{previous!r} leads"
            )
        return LoaderOption((*self.steps, step))

    def selectinload(self, attribute: Any) -> LoaderOption:
        return self._then(attribute, "selectin")

    def joinedload(self, attribute: Any, *, innerjoin: bool = False) -> LoaderOption:
        return self._then(attribute, "joined", innerjoin)

    def raiseload(self, attribute: Any) -> LoaderOption:
        return self._then(attribute, "raise")

    def __repr__(self) -> str:
        return " -> ".join(f"{s.strategy}({s.relationship!r})" for s in self.steps)


def _step(attribute: Any, strategy: str, innerjoin: bool = False) -> _Step:
    if not isinstance(attribute, RelationshipAttribute):
        raise ArgumentError(
            f"loader options take relationship attributes such as User.addresses, not {attribute!r}"
        )
    attribute.prop.ensure_configured()
    return _Step(attribute.prop, strategy, innerjoin)


def selectinload(attribute: Any) -> LoaderOption:
    """Load this relationship with one extra ``SELECT … WHERE key IN (…)`` per batch."""
    return LoaderOption((_step(attribute, "selectin"),))


def joinedload(attribute: Any, *, innerjoin: bool = False) -> LoaderOption:
    """Load this relationship in the same query, through a LEFT OUTER (or inner) JOIN."""
    return LoaderOption((_step(attribute, "joined", innerjoin),))


def raiseload(attribute: Any) -> LoaderOption:
    """Leave this relationship unloaded (the default): reading it raises."""
    return LoaderOption((_step(attribute, "raise"),))


# -- the plan for one query -------------------------------------------------------------------


def effective_steps(entity_mapper: Any, options: Sequence[Any]) -> list[tuple[_Step, ...]]:
    """The loader paths for an entity: explicit options plus relationships' defaults."""
    paths: list[tuple[_Step, ...]] = [
        option.steps
        for option in options
        if isinstance(option, LoaderOption) and option.steps[0].relationship.parent is entity_mapper
    ]
    explicit = {id(path[0].relationship) for path in paths}
    for relationship in entity_mapper.relationships.values():
        if relationship.lazy in ("selectin", "joined") and id(relationship) not in explicit:
            paths.append((_Step(relationship, relationship.lazy, relationship.innerjoin),))
    return paths


def multiplies_rows(paths: list[tuple[_Step, ...]]) -> bool:
    """Whether joining these paths' first steps repeats the parent row (a joined collection)."""
    return any(path[0].strategy == "joined" and path[0].relationship.uselist for path in paths)


def limits_rows(statement: Any) -> bool:
    """Whether the statement's rows are counted or merged (LIMIT, OFFSET, DISTINCT, GROUP BY),
    so that a joined collection must not multiply them."""
    return (
        statement._limit is not None
        or statement._offset is not None
        or statement._distinct
        or bool(statement._group_by)
    )


def wrap_in_subquery(statement: Any) -> tuple[Any, Any]:
    """``SELECT <the statement's columns> FROM (statement) AS anon ORDER BY <its order>``.

    Joined collections are then joined to the subquery, so that LIMIT/OFFSET/DISTINCT/GROUP
    BY count the parents, not the joined rows. The result has the statement's columns in the
    same positions; the ORDER BY is repeated outside, so the parents keep their order
    (an ORDER BY expression that is not a selected column is added to the subquery).
    """
    width = len(statement._expanded_columns)
    selected = {id(column) for column in statement._expanded_columns}
    extra: list[Any] = []
    for item in statement._order_by:
        element = item.element if isinstance(item, UnaryExpression) else item
        if isinstance(element, LabelReference) or id(element) in selected:
            continue
        extra.append(element.label(f"order_{len(extra) + 1}"))
    inner = statement.add_columns(*extra) if extra else statement
    subquery = inner.subquery()
    columns = list(subquery.c)
    outer: Any = select(*columns[:width])
    labels = iter(columns[width:])
    order = []
    for item in statement._order_by:
        element = item.element if isinstance(item, UnaryExpression) else item
        if isinstance(element, LabelReference):
            outer_element = subquery.c[element.name]
        elif id(element) in selected:
            outer_element = subquery.corresponding_column(element)
        else:
            outer_element = next(labels)
        assert outer_element is not None
        order.append(
            UnaryExpression(outer_element, operator=item.operator, modifier=item.modifier)
            if isinstance(item, UnaryExpression)
            else outer_element
        )
    if order:
        outer = outer.order_by(*order)
    if statement._for_update is not None:  # the lock stays on the statement actually run
        read, nowait, skip_locked = statement._for_update
        outer = outer.with_for_update(read=read, nowait=nowait, skip_locked=skip_locked)
    return outer, subquery


def add_joined_loads(
    statement: Any, mapper: Any, paths: list[tuple[_Step, ...]], parent_from: Any = None
) -> tuple[Any, list[tuple[Relationship[Any], tuple[int, int], bool]]]:
    """Add JOINs and columns for the first step of each joined path.

    ``parent_from`` is the subquery the parents are selected from, when the statement was
    wrapped by :func:`wrap_in_subquery`; the ON clauses then refer to its columns.
    Returns the new statement and, per joined relationship, the span of its columns.
    """
    joined: list[tuple[Relationship[Any], tuple[int, int], bool]] = []

    def parent_column(column: Any) -> Any:
        if parent_from is None:
            return column
        adapted = parent_from.corresponding_column(column)
        return column if adapted is None else adapted

    for path in paths:
        step = path[0]
        if step.strategy != "joined":
            continue
        relationship = step.relationship
        target_alias = relationship.target.table.alias()
        if relationship.direction == MANY_TO_MANY:
            assert relationship.secondary is not None
            secondary_alias = relationship.secondary.alias()
            on_secondary = and_(
                *(
                    parent_column(ref) == secondary_alias.c[sec.key]
                    for ref, sec in relationship.secondary_pairs
                )
            )
            on_target = and_(
                *(
                    target_alias.c[ref.key] == secondary_alias.c[sec.key]
                    for ref, sec in relationship.secondary_target_pairs
                )
            )
            if step.innerjoin:
                statement = statement.join(secondary_alias, on_secondary).join(
                    target_alias, on_target
                )
            else:
                statement = statement.outerjoin(secondary_alias, on_secondary).outerjoin(
                    target_alias, on_target
                )
        else:
            if relationship.direction == MANY_TO_ONE:
                pairs = [
                    (target_alias.c[ref.key], parent_column(fk)) for ref, fk in relationship.pairs
                ]
            else:
                pairs = [
                    (parent_column(ref), target_alias.c[fk.key]) for ref, fk in relationship.pairs
                ]
            onclause = and_(*(left == right for left, right in pairs))
            statement = (
                statement.join(target_alias, onclause)
                if step.innerjoin
                else statement.outerjoin(target_alias, onclause)
            )
        before = len(statement._raw_columns)
        statement = statement.add_columns(target_alias)
        span = statement._entity_spans[before]
        if relationship.order_by and relationship.uselist:
            statement = statement.order_by(
                *(_aliased_order(item, target_alias) for item in relationship.order_by)
            )
        joined.append((relationship, span, True))
    return statement, joined


def _aliased_order(item: Any, alias: Any) -> Any:
    """The relationship's ORDER BY, moved onto the joined alias of the target table."""
    element = item.__clause_element__() if hasattr(item, "__clause_element__") else item
    if isinstance(element, UnaryExpression):
        inner = alias.corresponding_column(element.element)
        if inner is not None:
            return UnaryExpression(inner, operator=element.operator, modifier=element.modifier)
        return element
    column = alias.corresponding_column(element)
    return element if column is None else column


def populate_joined(
    parent: Any,
    child: Any,
    relationship: Relationship[Any],
    seen: dict[tuple[int, str], bool],
    populate: bool,
) -> None:
    """Put one joined row's child into its parent's collection (or scalar slot).

    The first row of a parent decides whether this result fills the relationship: it does
    unless the relationship is already loaded (or has unflushed changes) and
    ``populate_existing`` is off.
    """
    if parent is None:
        return
    key = relationship.key
    mark = (id(parent), key)
    filling = seen.get(mark)
    values = parent.__dict__
    if filling is None:
        state = instance_state(parent)
        filling = populate or key not in values
        if state.committed and key in state.committed:
            filling = False
        seen[mark] = filling
        if filling:
            values[key] = relationship._new_collection(parent, ()) if relationship.uselist else None
            if state.expired is not None:
                state.expired = (state.expired - {key}) or None
    if not filling or child is None:
        return
    if relationship.uselist:
        collection = values[key]
        if not any(existing is child for existing in collection):
            collection._load_quietly([child])
    else:
        values[key] = child


# -- selectin loading ---------------------------------------------------------------------------


async def load_relationship(
    session: AsyncSession,
    relationship: Relationship[Any],
    objects: Sequence[Any],
    *,
    refresh: bool,
    populate: bool = False,
) -> None:
    """Load ``relationship`` for ``objects`` with IN queries.

    ``refresh`` reloads it where it is already loaded; ``populate`` (``populate_existing``)
    also overwrites the loaded related objects' columns with their rows.
    """
    configure_mappers()
    targets = [
        obj for obj in objects if obj is not None and (refresh or _needs_load(obj, relationship))
    ]
    if not targets:
        return
    if relationship.direction == MANY_TO_ONE:
        await _load_many_to_one(session, relationship, targets, refresh, populate)
    elif relationship.direction == MANY_TO_MANY:
        await _load_many_to_many(session, relationship, targets, populate)
    else:
        await _load_one_to_many(session, relationship, targets, populate)


def _needs_load(obj: Any, relationship: Relationship[Any]) -> bool:
    return relationship.key not in obj.__dict__


def _related_of(objects: Sequence[Any], relationship: Relationship[Any]) -> list[Any]:
    related: dict[int, Any] = {}
    for obj in objects:
        if obj is None:
            continue
        for item in relationship.loaded_related(obj):
            related[id(item)] = item
    return list(related.values())


def _chunks(values: list[Any], columns: int = 1) -> list[list[Any]]:
    size = SELECTIN_CHUNK if columns == 1 else COMPOSITE_CHUNK
    return [values[i : i + size] for i in range(0, len(values), size)]


def _in(columns: Sequence[Any], chunk: list[Any]) -> Any:
    """``column IN (...)`` for one column; ``(a = ? AND b = ?) OR ...`` for a composite key,
    whose values in ``chunk`` are tuples."""
    if len(columns) == 1:
        return columns[0].in_(chunk)
    return or_(*(and_(*(c == v for c, v in zip(columns, key, strict=True))) for key in chunk))


def _key(obj: Any, keys: Sequence[str]) -> Any:
    """The value (a tuple for several keys) of ``keys`` on ``obj``; None if any is None."""
    if len(keys) == 1:
        return _value(obj, keys[0])
    values = tuple(_value(obj, key) for key in keys)
    return None if any(v is None for v in values) else values


def _loaded_key(obj: Any, keys: Sequence[str]) -> Any:
    """``_key`` of a row just loaded, whose values are all in ``__dict__``."""
    values = obj.__dict__
    if len(keys) == 1:
        return values.get(keys[0])
    return tuple(values.get(key) for key in keys)


async def _load_one_to_many(
    session: AsyncSession, relationship: Relationship[Any], parents: list[Any], populate: bool
) -> None:
    ref_keys = relationship.ref_keys()
    fk_columns = [fk for _, fk in relationship.pairs]
    fk_keys = relationship.fk_keys()
    keys = list({v: None for p in parents if (v := _key(p, ref_keys)) is not None})
    grouped: dict[Any, list[Any]] = defaultdict(list)
    for chunk in _chunks(keys, len(fk_columns)):
        statement: Any = select(relationship.target.class_).where(_in(fk_columns, chunk))
        if relationship.order_by:
            statement = statement.order_by(*relationship.order_by)
        for child in await _objects(session, statement, populate):
            grouped[_loaded_key(child, fk_keys)].append(child)
    no_children: list[Any] = []
    uselist = relationship.uselist
    for parent in parents:
        children = grouped.get(_key(parent, ref_keys), no_children)
        if uselist:
            _set_loaded(parent, relationship, relationship._new_collection(parent, children))
        else:  # one-to-one
            _set_loaded(parent, relationship, children[0] if children else None)


async def _load_many_to_one(
    session: AsyncSession,
    relationship: Relationship[Any],
    children: list[Any],
    refresh: bool,
    populate: bool,
) -> None:
    ref_columns = [ref for ref, _ in relationship.pairs]
    ref_keys = relationship.ref_keys()
    fk_keys = relationship.fk_keys()
    wanted = list({v: None for c in children if (v := _key(c, fk_keys)) is not None})
    found: dict[Any, Any] = {}
    missing = []
    target = relationship.target
    by_pk = ref_keys == list(target.pk_keys)
    for value in wanted:
        obj = session._identity_map.get(target, value) if by_pk else None
        if obj is not None and not refresh and not instance_state(obj).expired:
            found[value] = obj
        else:
            missing.append(value)
    for chunk in _chunks(missing, len(ref_columns)):
        statement: Any = select(target.class_).where(_in(ref_columns, chunk))
        for obj in await _objects(session, statement, populate):
            found[_loaded_key(obj, ref_keys)] = obj
    for child in children:
        _set_loaded(child, relationship, found.get(_key(child, fk_keys)))


async def _load_many_to_many(
    session: AsyncSession, relationship: Relationship[Any], parents: list[Any], populate: bool
) -> None:
    parent_keys = [
        relationship.parent.key_of_column(ref) for ref, _ in relationship.secondary_pairs
    ]
    secondary_columns = [sec for _, sec in relationship.secondary_pairs]
    width = len(secondary_columns)
    target = relationship.target
    on_target = and_(*(ref == sec for ref, sec in relationship.secondary_target_pairs))
    keys = list({v: None for p in parents if (v := _key(p, parent_keys)) is not None})
    grouped: dict[Any, list[Any]] = defaultdict(list)
    for chunk in _chunks(keys, width):
        statement = (
            select(target.class_, *secondary_columns)
            .join(relationship.secondary, on_target)
            .where(_in(secondary_columns, chunk))
        )
        if relationship.order_by:
            statement = statement.order_by(*relationship.order_by)
        rows = (await _execute(session, statement, populate)).all()
        if width == 1:
            for obj, owner in rows:
                grouped[owner].append(obj)
        else:
            for obj, *owner in rows:
                grouped[tuple(owner)].append(obj)
    for parent in parents:
        items = grouped.get(_key(parent, parent_keys), [])
        _set_loaded(parent, relationship, relationship._new_collection(parent, items))


def _value(obj: Any, key: str) -> Any:
    value = obj.__dict__.get(key, NO_VALUE)
    if value is NO_VALUE:  # an expired primary key is still known from the identity
        state = instance_state(obj)
        if state.key is not None and key in state.mapper.pk_keys:
            return state.mapper.primary_key_of(state.key)[state.mapper.pk_keys.index(key)]
        return None
    return value


def _set_loaded(obj: Any, relationship: Relationship[Any], value: Any) -> None:
    values = obj.__dict__
    state = instance_state(obj)
    if state.committed and relationship.key in state.committed:
        return  # unflushed changes to this relationship win over the database's view
    values[relationship.key] = value
    if state.expired is not None:
        state.expired = (state.expired - {relationship.key}) or None


async def _execute(session: AsyncSession, statement: Any, populate: bool) -> Any:
    from .loading import execute_orm_select

    return await execute_orm_select(session, statement, None, {"populate_existing": populate})


async def _objects(session: AsyncSession, statement: Any, populate: bool) -> Sequence[Any]:
    result: Result[Any] = await _execute(session, statement, populate)
    return result.scalars().all()


async def run_selectin_paths(
    session: AsyncSession,
    objects: list[Any],
    paths: list[tuple[_Step, ...]],
    populate: bool = False,
    depth: int = 0,
) -> None:
    """After a query: load each selectin step for ``objects``, then the steps below it.

    With ``populate`` (the query's ``populate_existing``) relationships already loaded are
    loaded again, replacing what the objects hold.
    """
    if not objects or depth > 50:
        return
    for path in paths:
        step = path[0]
        if step.strategy == "raise":
            continue
        if step.strategy == "selectin" or (step.strategy == "joined" and depth > 0):
            # Only the first joined step rides on the parent's query; deeper ones use IN.
            await load_relationship(
                session, step.relationship, objects, refresh=populate, populate=populate
            )
        # A joined step was loaded by the query itself; either way, continue down the path.
        below = [path[1:]] if len(path) > 1 else []
        target = step.relationship.target
        default_paths = (
            [p for p in effective_steps(target, ()) if p[0].strategy == "selectin"]
            if depth < 10
            else []
        )
        if below or default_paths:
            related = _related_of(objects, step.relationship)
            await run_selectin_paths(
                session, related, [*below, *default_paths], populate, depth + 1
            )
