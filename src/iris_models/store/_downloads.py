"""The resume state of downloads in the store's database (the ``downloads`` table): one row per
file of a model being downloaded, written as the transfer goes and read by a later process."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._store import Store

__all__ = ["SavedDownload", "clear", "load", "save", "saved_downloads"]


@dataclass(frozen=True)
class SavedDownload:
    """One file's saved transfer state."""

    model_id: str
    rel_path: str
    url: str
    etag: str | None
    total_bytes: int | None
    bytes_done: int
    state: Mapping[str, Any]
    """The downloader's own record (ranges done, hash state); opaque to the store."""
    updated_at: float


def save(
    store: Store,
    model_id: str,
    rel_path: str,
    *,
    url: str,
    etag: str | None,
    total_bytes: int | None,
    bytes_done: int,
    state: Mapping[str, Any],
) -> None:
    with store.db.write() as sql:
        sql.execute(
            "INSERT INTO downloads (model_id, rel_path, url, etag, total_bytes, bytes_done, "
            "state, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (model_id, rel_path) DO UPDATE SET url = excluded.url, "
            "etag = excluded.etag, total_bytes = excluded.total_bytes, "
            "bytes_done = excluded.bytes_done, state = excluded.state, "
            "updated_at = excluded.updated_at",
            (model_id, rel_path, url, etag, total_bytes, bytes_done, json.dumps(dict(state)),
             time.time()),
        )  # fmt: skip


def load(store: Store, model_id: str) -> dict[str, SavedDownload]:
    """rel_path -> saved state, for one model."""
    with store.db.read() as sql:
        rows = sql.execute(
            "SELECT model_id, rel_path, url, etag, total_bytes, bytes_done, state, updated_at "
            "FROM downloads WHERE model_id = ?",
            (model_id,),
        ).fetchall()
    return {row[1]: _saved(row) for row in rows}


def saved_downloads(store: Store) -> list[SavedDownload]:
    with store.db.read() as sql:
        rows = sql.execute(
            "SELECT model_id, rel_path, url, etag, total_bytes, bytes_done, state, updated_at "
            "FROM downloads ORDER BY model_id, rel_path"
        ).fetchall()
    return [_saved(row) for row in rows]


def clear(store: Store, model_id: str) -> None:
    with store.db.write() as sql:
        sql.execute("DELETE FROM downloads WHERE model_id = ?", (model_id,))


def _saved(row: Any) -> SavedDownload:
    try:
        state = json.loads(row[6])
    except ValueError:
        state = {}  # a damaged record: the download starts that file over
    return SavedDownload(
        model_id=row[0],
        rel_path=row[1],
        url=row[2],
        etag=row[3],
        total_bytes=row[4],
        bytes_done=row[5],
        state=state if isinstance(state, dict) else {},
        updated_at=row[7],
    )
