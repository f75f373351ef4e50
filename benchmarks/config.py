"""What the suite runs: workload sizes, the workloads' names, and issue 7's targets."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

__all__ = [
    "IMPLEMENTATIONS",
    "MEMORY_TARGET",
    "TARGETS",
    "WORKLOADS",
    "Sizes",
    "Target",
    "WorkloadInfo",
]


@dataclass(frozen=True)
class Sizes:
    """Row and operation counts of every workload (issue 7's numbers by default)."""

    insert_objects: int = 10_000  # W1
    insert_dicts: int = 10_000  # W1b
    fetch: int = 10_000  # W2
    get_distinct: int = 2_000  # W3
    get_per_session: int = 100  # W3: a new session per this many gets
    get_repeated: int = 2_000  # W3b
    get_repeated_keys: int = 100  # W3b: the distinct keys fetched over and over
    update: int = 2_000  # W4
    transactions: int = 1_000  # W5
    tasks: int = 50  # W6
    task_iterations: int = 20  # W6
    pool_size: int = 10  # W6 (and every engine's pool)
    delete: int = 2_000  # W7
    eager_users: int = 1_000  # W8
    eager_children: int = 5  # W8: children per user
    untouched: int = 100  # W4/W7: extra rows the workload must leave alone
    compile_iterations: int = 5_000  # compile-cache microbenchmark
    hydration: int = 10_000  # row-hydration microbenchmark (W2 on in-memory SQLite)

    def scaled(self, factor: float) -> Sizes:
        """Every count times ``factor`` (at least 1); the shape parameters keep their value."""
        shape = {"get_per_session", "get_repeated_keys", "pool_size", "eager_children", "tasks"}
        changes = {
            f.name: max(1, round(getattr(self, f.name) * factor))
            for f in fields(self)
            if f.name not in shape
        }
        return replace(self, **changes)


@dataclass(frozen=True)
class WorkloadInfo:
    key: str
    title: str
    description: str


WORKLOADS: tuple[WorkloadInfo, ...] = (
    WorkloadInfo("W1", "insert objects", "insert N new objects with add_all + one commit"),
    WorkloadInfo(
        "W1b", "insert dicts", "the same rows as dicts: session.execute(insert(User), rows)"
    ),
    WorkloadInfo("W2", "fetch", "fetch N rows into objects"),
    WorkloadInfo("W3", "get by PK", "get by primary key, distinct keys, a new session per 100"),
    WorkloadInfo(
        "W3b", "get (identity map)", "get 100 keys over and over in a session that has them"
    ),
    WorkloadInfo("W4", "update", "load N objects, change one attribute each, one commit"),
    WorkloadInfo("W5", "1-insert txns", "N transactions of one insert + commit each"),
    WorkloadInfo(
        "W6", "concurrency", "50 tasks x 20 (session, get, increment, commit), pool of 10"
    ),
    WorkloadInfo("W7", "delete", "load N objects and delete them, one commit"),
    WorkloadInfo("W8", "eager load", "N users x 5 children loaded with selectinload"),
)

IMPLEMENTATIONS: tuple[str, ...] = ("asyncorm", "sqlalchemy", "tortoise", "raw", "raw_objects")
"""In the order they are interleaved. ``tortoise`` is Tortoise ORM, the optional peer;
``raw`` is the driver with hand-written SQL (the floor); ``raw_objects`` is the same plus
one plain Python object per fetched row."""

OPTIONAL_IMPLEMENTATIONS: tuple[str, ...] = ("tortoise",)
"""Run only when asked (``--with-tortoise``): a peer's allocations in the same process slow
the memory-bound work that runs after them (see the README), so the run that judges issue
7's targets has exactly the implementations the issue names."""

DEFAULT_IMPLEMENTATIONS: tuple[str, ...] = tuple(
    name for name in IMPLEMENTATIONS if name not in OPTIONAL_IMPLEMENTATIONS
)


@dataclass(frozen=True)
class Target:
    """Issue 7's ceiling for asyncorm's time divided by the raw driver's, per database."""

    postgresql: float
    sqlite: float
    note: str = ""

    def for_database(self, database: str) -> float:
        return self.postgresql if database == "postgresql" else self.sqlite


TARGETS: dict[str, Target] = {
    "W1": Target(2.0, 3.0, "batched multi-row INSERT ... RETURNING"),
    "W1b": Target(1.2, 1.2),
    "W2": Target(2.0, 2.0, "hydration bypasses __init__"),
    "W3": Target(1.3, 1.3),
    "W3b": Target(0.05, 0.05, "a hit is a dict lookup, not a query"),
    "W4": Target(1.5, 1.5, "only changed columns, batched"),
    "W5": Target(1.15, 1.15, "commit latency is the database's"),
    "W6": Target(1.3, 1.3),
    "W7": Target(2.0, 2.0),
    "W8": Target(2.5, 2.5),
}

MEMORY_TARGET = 1.5
"""W2's peak memory: asyncorm at most this times the raw plain-object variant's."""
