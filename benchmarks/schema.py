"""The benchmark tables (created with hand-written DDL, shared by every implementation) and
the deterministic rows the workloads insert, seed and check against."""

from __future__ import annotations

__all__ = [
    "CHILD_COLUMNS",
    "USER_COLUMNS",
    "ChildRow",
    "UserRow",
    "UserValues",
    "child_label",
    "child_row",
    "ddl",
    "new_user",
    "user_row",
]

USER_COLUMNS = ("id", "name", "email", "age", "counter")
CHILD_COLUMNS = ("id", "user_id", "label")

UserValues = tuple[str, str, int, int]
"""A new user's values without the primary key: (name, email, age, counter)."""
UserRow = tuple[int, str, str, int, int]
"""(id, name, email, age, counter), in ``USER_COLUMNS`` order."""
ChildRow = tuple[int, int, str]
"""(id, user_id, label)."""


def new_user(i: int) -> UserValues:
    return (f"user {i}", f"user{i}@example.com", 18 + i % 60, 0)


def user_row(i: int) -> UserRow:
    return (i, *new_user(i))


def child_label(user_id: int, n: int) -> str:
    return f"child {user_id}.{n}"


def child_row(child_id: int, user_id: int, n: int) -> ChildRow:
    return (child_id, user_id, child_label(user_id, n))


def ddl(backend: str) -> list[str]:
    """CREATE statements for ``"postgresql"`` or ``"sqlite"``."""
    pk = "SERIAL PRIMARY KEY" if backend == "postgresql" else "INTEGER PRIMARY KEY"
    return [
        "DROP TABLE IF EXISTS children",
        "DROP TABLE IF EXISTS users",
        f"""CREATE TABLE users (
            id {pk},
            name VARCHAR(100) NOT NULL,
            email VARCHAR(200) NOT NULL,
            age INTEGER NOT NULL,
            counter INTEGER NOT NULL DEFAULT 0
        )""",
        f"""CREATE TABLE children (
            id {pk},
            user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
            label VARCHAR(100) NOT NULL
        )""",
        "CREATE INDEX ix_children_user_id ON children (user_id)",
    ]
