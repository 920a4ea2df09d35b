"""What a download reports as it goes: one frozen dataclass per kind of event, delivered to
callbacks and to async iterators alike, and as JSON for ``--json`` output."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Cancelled",
    "Completed",
    "DownloadEvent",
    "Failed",
    "Paused",
    "Progress",
    "Queued",
    "Resumed",
    "Retrying",
    "Started",
    "Verifying",
]


@dataclass(frozen=True)
class DownloadEvent:
    model_id: str
    at: float = field(default_factory=time.time, kw_only=True)

    @property
    def kind(self) -> str:
        return type(self).__name__.lower()

    def to_dict(self) -> dict[str, Any]:
        data = {"event": self.kind}
        for item in dataclasses.fields(self):
            value = getattr(self, item.name)
            data[item.name] = str(value) if isinstance(value, BaseException) else value
        return data


@dataclass(frozen=True)
class Queued(DownloadEvent):
    position: int = 0
    """Downloads ahead of this one (0: it starts as soon as it may)."""
    reason: str = ""
    """Why it waits: the concurrency limit, or a policy holding transfers."""


@dataclass(frozen=True)
class Started(DownloadEvent):
    files: int = 1
    total_bytes: int | None = None
    resumed_bytes: int = 0
    """Bytes a previous run left that this one keeps."""


@dataclass(frozen=True)
class Progress(DownloadEvent):
    file: str = ""
    bytes_done: int = 0
    """Of the whole model, all files together."""
    total_bytes: int | None = None
    speed_bytes_per_s: float = 0.0
    eta_s: float | None = None
    connections: int = 0


@dataclass(frozen=True)
class Retrying(DownloadEvent):
    file: str = ""
    attempt: int = 1
    delay_s: float = 0.0
    reason: str = ""


@dataclass(frozen=True)
class Paused(DownloadEvent):
    reason: str = "paused"
    bytes_done: int = 0


@dataclass(frozen=True)
class Resumed(DownloadEvent):
    bytes_done: int = 0


@dataclass(frozen=True)
class Verifying(DownloadEvent):
    """The bytes are all in and hashed; the store checks sizes, the GGUF header, and moves the
    files into place."""

    files: int = 1


@dataclass(frozen=True)
class Completed(DownloadEvent):
    path: str = ""
    sha256: str = ""
    """Of the model file (``sha256:<hex>``)."""
    digest_source: str = ""
    size_bytes: int = 0
    fetched_bytes: int = 0
    duration_s: float = 0.0
    mean_speed_bytes_per_s: float = 0.0


@dataclass(frozen=True)
class Failed(DownloadEvent):
    error: BaseException | None = None
    message: str = ""


@dataclass(frozen=True)
class Cancelled(DownloadEvent):
    kept_part_files: bool = False
