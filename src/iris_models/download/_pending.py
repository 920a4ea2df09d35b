"""The downloads a store holds but has not finished: queued, under way, paused, or failed with
bytes kept; what a later process (``iris-models downloads --resume``) picks up."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["PendingDownload", "pending_downloads"]


@dataclass(frozen=True)
class PendingDownload:
    model_id: str
    state: str
    bytes_done: int
    total_bytes: int | None
    files: tuple[str, ...]
    updated_at: float
    reason: str | None
    resumable: bool
    """False while another process is transferring it (it holds the model's lock)."""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["id"] = data.pop("model_id")
        data["files"] = list(self.files)
        return data


def pending_downloads(store: Store) -> list[PendingDownload]:
    """Every model of `store` with a download queued, under way, paused, or stopped by a
    failure that kept bytes to resume from, in id order."""
    from ..store import LifecycleState as S
    from ..store._locks import ModelLock

    saved: dict[str, list[Any]] = {}
    for item in store.saved_downloads():
        saved.setdefault(item.model_id.lower(), []).append(item)
    waiting = (S.QUEUED, S.DOWNLOADING, S.PAUSED, S.DOWNLOADED)
    found = []
    for model in store.list_models():
        files = saved.get(model.id.lower(), [])
        if model.state not in waiting and not (model.state in (S.ERROR, S.DISCOVERED) and files):
            continue
        totals = [item.total_bytes for item in files]
        busy = model.state is S.DOWNLOADING and ModelLock(store.root, model.id).is_held_elsewhere()
        found.append(
            PendingDownload(
                model_id=model.id,
                state=model.state.value,
                bytes_done=sum(item.bytes_done for item in files),
                total_bytes=None if not totals or None in totals else sum(t or 0 for t in totals),
                files=tuple(item.rel_path for item in files),
                updated_at=max((item.updated_at for item in files), default=model.updated_at),
                reason=model.state_reason,
                resumable=not busy,
            )
        )
    return found
