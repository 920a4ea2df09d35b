"""The store database's schema, and the forward migrations that bring any older database to
it. Each migration runs inside the transaction that records its version, so a process killed
half-way leaves the database exactly as it was before."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

__all__ = ["APPLICATION_ID", "MIGRATIONS", "SCHEMA_VERSION", "Migration"]

# PRAGMA application_id: "IRIS", so that another program's SQLite file is never mistaken for a
# store (and never migrated).
APPLICATION_ID = 0x49524953

Migration = Callable[[sqlite3.Connection], None]

_VERSION_1 = """
CREATE TABLE models (
    id              TEXT PRIMARY KEY COLLATE NOCASE,  -- NOCASE: ids are folder names, and
                                                      -- macOS folders ignore case
    name            TEXT NOT NULL,
    category        TEXT NOT NULL DEFAULT 'llm',
    state           TEXT NOT NULL,
    state_reason    TEXT,
    storage         TEXT NOT NULL DEFAULT 'managed',  -- managed | hardlink | reference
    source          TEXT,                             -- URL or the path it was imported from
    architecture    TEXT,
    quantization    TEXT,
    parameter_count INTEGER,
    context_length  INTEGER,
    size_bytes      INTEGER NOT NULL DEFAULT 0,       -- all files together
    priority        INTEGER NOT NULL DEFAULT 1,       -- 0 low, 1 normal, 2 high, 3 critical
    pinned          INTEGER NOT NULL DEFAULT 0,
    created_at      REAL NOT NULL,
    installed_at    REAL,
    updated_at      REAL NOT NULL,
    last_used_at    REAL,
    use_count       INTEGER NOT NULL DEFAULT 0,
    metadata        TEXT NOT NULL DEFAULT '{}'        -- JSON object
) WITHOUT ROWID;  -- clustered by id: a listing in id order is one scan, not 10,000 lookups
CREATE INDEX models_by_state ON models (state);
CREATE INDEX models_by_category ON models (category);

CREATE TABLE files (
    model_id      TEXT NOT NULL COLLATE NOCASE REFERENCES models (id) ON DELETE CASCADE,
    rel_path      TEXT NOT NULL,           -- under the model's folder
    role          TEXT NOT NULL,           -- model | shard | projector | extra
    size_bytes    INTEGER NOT NULL,
    sha256        TEXT,                    -- "sha256:<hex>", checked before the model was READY
    seal          TEXT,                    -- a fast local digest ("xxh128:<hex>"), optional
    mtime_ns      INTEGER,                 -- when the digest was taken: fsck re-verifies on change
    external_path TEXT,                    -- a file adopted by reference lives here instead
    PRIMARY KEY (model_id, rel_path)
) WITHOUT ROWID;

-- Resume state of a transfer in progress: survives the process that wrote it.
CREATE TABLE downloads (
    model_id     TEXT NOT NULL COLLATE NOCASE REFERENCES models (id) ON DELETE CASCADE,
    rel_path     TEXT NOT NULL,
    url          TEXT NOT NULL,
    etag         TEXT,
    total_bytes  INTEGER,
    bytes_done   INTEGER NOT NULL DEFAULT 0,
    state        TEXT NOT NULL DEFAULT '{}',  -- JSON: ranges done, piece hashes so far
    updated_at   REAL NOT NULL,
    PRIMARY KEY (model_id, rel_path)
);

CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         REAL NOT NULL,
    model_id   TEXT,                       -- no foreign key: the log outlives removed models
    kind       TEXT NOT NULL,              -- state | evicted | removed | imported | repaired | ...
    from_state TEXT,
    to_state   TEXT,
    bytes      INTEGER,
    detail     TEXT
);
CREATE INDEX events_by_kind ON events (kind, at);

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL                    -- JSON
);
"""


def _create_version_1(connection: sqlite3.Connection) -> None:
    for statement in _VERSION_1.split(";"):
        if statement.strip():
            connection.execute(statement)


# MIGRATIONS[i] brings a database from version i to version i + 1. Append, never edit.
MIGRATIONS: Sequence[Migration] = (_create_version_1,)
SCHEMA_VERSION = len(MIGRATIONS)
