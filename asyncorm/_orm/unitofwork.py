"""Flush planning: a pure function from the session's changes to ordered statement batches.

Nothing here does I/O, so the plan can be tested by itself; ``persistence`` runs it. States
are not touched either: they move to persistent/deleted only after every batch succeeded,
which is what lets a failed flush leave pending objects pending.

Values the database has not generated yet (a new parent's key that a new child's foreign
key needs) appear in the plan as ``Deferred(state, key)`` and are resolved by
``persistence`` from the rows it has already inserted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import speedups
from .mapper import group_by_mapper
from .state import NO_VALUE, InstanceState

if TYPE_CHECKING:
    from .._sql.schema import Column, ColumnDefault, Table
    from .mapper import Mapper


@dataclass(frozen=True, eq=False)
class Deferred:
    """The value of ``key`` on the object of ``state``, known once it is inserted."""

    state: InstanceState
    key: str

    # By identity: hashing the state (a weak reference) would hash the user's object.
    def __eq__(self, other: object) -> bool:
        return isinstance(other, Deferred) and other.state is self.state and other.key == self.key

    def __hash__(self) -> int:
        return hash((id(self.state), self.key))

    def __repr__(self) -> str:
        return f"Deferred({self.state.mapper.class_.__name__}.{self.key})"


@dataclass
class InsertBatch:
    """Rows of one table with the same set of given columns: one statement, one round trip."""

    mapper: Mapper
    keys: tuple[str, ...]  # attribute keys given, in table order
    returning: tuple[str, ...]  # attribute keys the database generates
    states: list[InstanceState] = field(default_factory=list)
    rows: list[tuple[Any, ...]] = field(default_factory=list)  # values in ``keys`` order
    #: some row holds a ``Deferred`` value (a key of a row inserted earlier in the flush)
    deferred: bool = False
    #: every row is its object's own attribute values (none defaulted or assigned): once
    #: inserted, only the generated values are new to the objects
    from_objects: bool = False


@dataclass
class UpdateBatch:
    """Rows of one table changing the same set of columns, found by their old key."""

    mapper: Mapper
    keys: tuple[str, ...]
    states: list[InstanceState] = field(default_factory=list)
    #: per row, the new values in ``keys`` order, then the row's identity-map key (see
    #: ``Mapper.identity_key``; ``Deferred`` parts for a row inserted earlier in the same
    #: flush): for a one-column key, the UPDATE's parameters as they are
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    deferred: bool = False


@dataclass
class AssociationBatch:
    """Many-to-many link rows to add to / remove from a secondary table.

    Both sides of a ``back_populates`` pair report the same link; it is kept once.
    """

    table: Table
    inserts: list[dict[str, Any]] = field(default_factory=list)
    deletes: list[dict[str, Any]] = field(default_factory=list)
    _seen: set[tuple[bool, tuple[tuple[str, Any], ...]]] = field(default_factory=set)

    def add(self, rows: list[dict[str, Any]], *, delete: bool) -> None:
        for row in rows:
            marker = (delete, tuple(sorted(row.items())))
            if marker not in self._seen:
                self._seen.add(marker)
                (self.deletes if delete else self.inserts).append(row)


@dataclass
class DeleteBatch:
    mapper: Mapper
    states: list[InstanceState] = field(default_factory=list)
    identities: list[Any] = field(default_factory=list)  # identity-map keys
    #: secondary-table rows that reference the deleted rows: (table, column key)
    association_columns: list[tuple[Table, str, str]] = field(default_factory=list)


Batch = InsertBatch | UpdateBatch | AssociationBatch | DeleteBatch


@dataclass
class FlushPlan:
    batches: list[Batch]

    def __bool__(self) -> bool:
        return bool(self.batches)


@dataclass
class FlushChanges:
    """The session's changes as the planner takes them."""

    new: list[InstanceState]
    dirty: list[InstanceState]
    deleted: list[InstanceState]
    #: foreign key values that follow from relationships, per state
    assignments: dict[int, dict[str, Any]] = field(default_factory=dict)
    #: foreign keys to set by an UPDATE after the inserts (cycles, ``post_update=True``)
    post_updates: dict[int, dict[str, Any]] = field(default_factory=dict)
    associations: dict[int, AssociationBatch] = field(default_factory=dict)
    states: dict[int, InstanceState] = field(default_factory=dict)


def sort_tables(tables: Iterable[Table]) -> list[Table]:
    """Parents before children, by foreign keys; a stable order otherwise."""
    pending = list({id(t): t for t in tables}.values())
    names = {id(table) for table in pending}
    ordered: list[Table] = []
    placed: set[int] = set()
    while pending:
        progress = False
        for table in list(pending):
            parents = {
                id(fk.column.table)
                for fk in table.foreign_keys
                if id(fk.column.table) in names and fk.column.table is not table
            }
            if parents <= placed:
                ordered.append(table)
                placed.add(id(table))
                pending.remove(table)
                progress = True
        if not progress:
            # A cycle between tables: keep the declared order; relationships in the cycle
            # need post_update=True so one side's key is set by a later UPDATE.
            ordered.extend(pending)
            break
    return ordered


def in_sql(generator: ColumnDefault | None) -> bool:
    """Whether a ``default`` / ``onupdate`` is a SQL expression, which the statement renders
    (rather than a value the flush computes and sends)."""
    return generator is not None and generator.is_clause_element


def default_value(column: Column[Any], kind: str) -> Any:
    generator = column.default if kind == "default" else column.onupdate
    if generator is None:
        return NO_VALUE
    value = generator.arg
    if callable(value):
        try:
            return value()
        except TypeError:
            return value(None)
    return value


def _values(state: InstanceState) -> dict[str, Any]:
    obj = state()
    return obj.__dict__ if obj is not None else {}


def _extend_column_updates(
    candidates: list[InstanceState],
    start: int,
    state_class: type,
    key: str,
    states: list[InstanceState],
    rows: list[tuple[Any, ...]],
) -> int:
    """From ``candidates[start]`` on, while each is a persistent state of ``state_class``
    whose only change is the column ``key``, add it to the batch of ``states`` and ``rows``.
    Returns the index of the first candidate left to the general planning. (The C
    extension's ``extend_column_updates`` does the same.)"""
    for index in range(start, len(candidates)):
        state = candidates[index]
        identity = state.key
        committed = state.committed
        if (
            state.__class__ is not state_class
            or identity is None
            or committed is None
            or len(committed) != 1
            or key not in committed
        ):
            return index
        obj = state()
        values = obj.__dict__ if obj is not None else {}
        if key not in values:
            return index
        states.append(state)
        rows.append((values[key], identity))
    return len(candidates)


def _depth(state: InstanceState, row: dict[str, Any], rows: dict[int, dict[str, Any]]) -> int:
    """How many new rows of the same table this row's keys wait for (self-referential)."""
    depth = 0
    seen = {id(state)}
    current = row
    while True:
        parent = next(
            (
                v.state
                for v in current.values()
                if isinstance(v, Deferred) and v.state.mapper.table is state.mapper.table
            ),
            None,
        )
        if parent is None or id(parent) in seen or id(parent) not in rows:
            return depth
        seen.add(id(parent))
        depth += 1
        current = rows[id(parent)]


def _add_insert(
    inserts: dict[tuple[Any, ...], InsertBatch],
    state: InstanceState,
    row: dict[str, Any],
    depth: int,
    deferred: bool,
) -> None:
    mapper = state.mapper
    keys = tuple(row)
    batch = inserts.get((mapper, keys, depth))
    if batch is None:
        returning = tuple(
            key
            for key, column in mapper.columns.items()
            if key not in row
            and (column.primary_key or column.server_default is not None or in_sql(column.default))
        )
        batch = inserts[(mapper, keys, depth)] = InsertBatch(mapper, keys, returning)
    batch.states.append(state)
    batch.rows.append(tuple(row.values()))
    if deferred:
        batch.deferred = True


def _objects_insert(mapper: Mapper, states: list[InstanceState]) -> InsertBatch | None:
    """One batch of the states' objects' own values, when each holds a value for every
    column but a generated primary key (else None: they go row by row)."""
    plan = mapper.object_insert
    try:
        rows = plan.rows(states)
    except KeyError:
        return None  # some object leaves a column to its default
    if len(rows) != len(states):
        return None  # some object sets its generated key itself
    return InsertBatch(mapper, plan.keys, plan.returning, states, rows, from_objects=True)


def plan_flush(changes: FlushChanges) -> FlushPlan:
    """Inserts parent-first, updates, link rows, then deletes child-first, in batches."""
    new_rows: dict[int, dict[str, Any]] = {}
    inserts: dict[tuple[Any, ...], InsertBatch] = {}
    waiting: list[InstanceState] = []  # rows of self-referential tables: batched by depth
    assignments = changes.assignments
    for mapper, states in group_by_mapper(changes.new):
        if not mapper.is_self_referential and not (
            assignments and any(id(state) in assignments for state in states)
        ):
            from_objects = _objects_insert(mapper, states)
            if from_objects is not None:
                # Kept apart from row-by-row batches, whose rows may hold values that are
                # not yet their objects'.
                inserts[(mapper, "from objects", 0)] = from_objects
                continue
        for state in states:
            values = _values(state)
            assigned = assignments.get(id(state)) if assignments else None
            if assigned:
                values = {**values, **assigned}
            column_keys = mapper.column_keys
            row = {key: values[key] for key in column_keys if key in values}
            if len(row) < len(column_keys):
                for key, column in mapper.defaulted_columns:
                    # A SQL expression is left to the INSERT, which renders it; its value
                    # comes back through RETURNING (see ``_add_insert``).
                    if key not in row and not in_sql(column.default):
                        row[key] = default_value(column, "default")
            if mapper.is_self_referential:
                new_rows[id(state)] = row
                waiting.append(state)
                continue
            _add_insert(inserts, state, row, 0, bool(assigned))
    for state in waiting:
        row = new_rows[id(state)]
        _add_insert(inserts, state, row, _depth(state, row, new_rows), True)

    only_inserts = not (
        changes.dirty or changes.deleted or changes.assignments or changes.post_updates
    )
    if only_inserts and len(inserts) == 1 and not changes.associations:
        return FlushPlan(list(inserts.values()))  # one batch: nothing to order

    updates: dict[tuple[Any, ...], UpdateBatch] = {}

    def add_update(
        state: InstanceState, changed: dict[str, Any], phase: int, deferred: bool
    ) -> None:
        mapper = state.mapper
        if phase == 0:
            for key, column in mapper.onupdate_columns:
                # A SQL expression is left to the UPDATE, which renders it; its value comes
                # back through RETURNING (see persistence's ``_update_statement``).
                if key not in changed and not in_sql(column.onupdate):
                    changed[key] = default_value(column, "onupdate")
        keys = tuple(changed)
        batch = updates.get((phase, mapper, keys))
        if batch is None:
            batch = updates[(phase, mapper, keys)] = UpdateBatch(mapper, keys)
        identity = state.key
        if identity is None:
            deferred = True
            identity = mapper.identity_key(tuple(Deferred(state, key) for key in mapper.pk_keys))
        batch.states.append(state)
        batch.rows.append((*changed.values(), identity))
        if deferred:
            batch.deferred = True

    deleted = set(changes.deleted)  # states hash by identity
    candidates = changes.dirty  # persistent and not deleted (see AsyncSession._collect_changes)
    if changes.assignments:
        dirty_ids = {id(s) for s in changes.dirty}
        candidates = candidates + [
            changes.states[i]
            for i in changes.assignments
            if i not in dirty_ids and i not in new_rows and changes.states[i] not in deleted
        ]
    # The batch of the row before, usually the one of this row too: its mapper, its
    # columns, and its lists of states and rows, so such a row costs no lookups.
    last: tuple[Mapper, tuple[str, ...], list[InstanceState], list[tuple[Any, ...]]] | None = None
    # Runs of rows changing one column the same way (W4's 2,000 rows) go to their batch in
    # one call, unless deletes or relationship assignments need checking per row.
    extend = None
    if not deleted and not assignments:
        extend = speedups.extend_column_updates or _extend_column_updates
    index, count = 0, len(candidates)
    while index < count:
        state = candidates[index]
        index += 1
        identity = state.key
        if identity is None or (deleted and state in deleted):
            continue
        mapper = state.mapper
        obj = state()
        values = obj.__dict__ if obj is not None else {}
        committed = state.committed
        if not committed:
            changed = {}
        elif len(committed) == 1:  # committed also records relationship changes
            (key,) = committed  # one changed attribute, the common case: no comprehension
            changed = {key: values[key]} if key in values and key in mapper.columns else {}
        else:  # in column order, so objects changing the same columns share one batch
            changed = {
                key: values[key] for key in mapper.columns if key in committed and key in values
            }
        assigned = assignments.get(id(state)) if assignments else None
        if assigned:
            for key, value in assigned.items():
                if (
                    isinstance(value, Deferred)
                    or values.get(key, NO_VALUE) != value
                    or key in changed
                ):
                    changed[key] = value
        if not changed:
            continue
        if assigned or mapper.onupdate_columns:
            add_update(state, changed, 0, bool(assigned))
            last = None
            continue
        # Plain changes of a persistent row, usually the same columns as the row before:
        # reuse that batch without building its key again.
        keys = tuple(changed)
        if last is None or last[0] is not mapper or last[1] != keys:
            batch = updates.get((0, mapper, keys))
            if batch is None:
                batch = updates[(0, mapper, keys)] = UpdateBatch(mapper, keys)
            last = (mapper, keys, batch.states, batch.rows)
        last[2].append(state)
        last[3].append((*changed.values(), identity))
        if extend is not None and len(keys) == 1:
            index = extend(candidates, index, state.__class__, keys[0], last[2], last[3])

    for state_id, values in changes.post_updates.items():
        if changes.states[state_id] in deleted:
            continue
        add_update(changes.states[state_id], dict(values), 1, True)

    deletes: dict[Mapper, DeleteBatch] = {}
    for mapper, deleted_states in group_by_mapper(changes.deleted):
        batch_d = deletes[mapper] = DeleteBatch(mapper)
        for relationship in mapper.relationships.values():
            if relationship.owns_secondary_rows():
                assert relationship.secondary is not None
                for ref, sec in relationship.secondary_pairs:
                    batch_d.association_columns.append(
                        (relationship.secondary, sec.key, mapper.key_of_column(ref))
                    )
        batch_d.states.extend(deleted_states)
        batch_d.identities.extend([state.key for state in deleted_states])

    links = [batch for batch in changes.associations.values() if batch.inserts or batch.deletes]
    if len(inserts) + len(updates) + len(deletes) + len(links) == 1:
        # One batch (a single object changed, say): nothing to order.
        return FlushPlan([*inserts.values(), *updates.values(), *links, *deletes.values()])
    tables = sort_tables(
        [b.mapper.table for b in inserts.values()]
        + [b.mapper.table for b in updates.values()]
        + [m.table for m in deletes]
    )
    rank = {id(table): position for position, table in enumerate(tables)}
    batches: list[Batch] = []
    batches.extend(
        batch
        for (_, _, depth), batch in sorted(
            inserts.items(), key=lambda item: (rank[id(item[1].mapper.table)], item[0][2])
        )
    )
    batches.extend(
        batch
        for (phase, _, _), batch in sorted(
            updates.items(), key=lambda item: (item[0][0], rank[id(item[1].mapper.table)])
        )
    )
    batches.extend(links)
    ordered_deletes: list[DeleteBatch] = sorted(
        deletes.values(), key=lambda batch: -rank[id(batch.mapper.table)]
    )
    batches.extend(ordered_deletes)
    return FlushPlan(batches)
