"""Downloads: resumable, ranged, verified as the bytes land, into the store.

>>> from iris_models import Registry
>>> registry = Registry()
>>> model = registry.pull_sync("gemma-3-270m-q4_k_m")  # doctest: +SKIP

:class:`Downloader` runs the jobs (limits, pause, resume, events); :class:`FileDownload`
fetches one file (ranged connections, resume state, a hash that follows the bytes).
"""

from __future__ import annotations

from ._engine import DEFAULT_SPACE_BUFFER_BYTES, Downloader, NetworkPolicy
from ._events import (
    Cancelled,
    Completed,
    DownloadEvent,
    Failed,
    Paused,
    Queued,
    Resumed,
    Retrying,
    Started,
    Verifying,
)
from ._events import Progress as ProgressEvent
from ._file import FileDownload, FileResult, FileSource, Progress, ResumeState, TransferOptions
from ._pending import PendingDownload, pending_downloads
from ._probe import RemoteFile, probe
from ._ranges import RangeSet
from ._rate import HostSlots, TokenBucket, parse_rate
from ._strategies import (
    DownloadStrategy,
    Transfer,
    TransferRequest,
    register_strategy,
    strategy_for,
)

__all__ = [
    "DEFAULT_SPACE_BUFFER_BYTES",
    "Cancelled",
    "Completed",
    "DownloadEvent",
    "DownloadStrategy",
    "Downloader",
    "Failed",
    "FileDownload",
    "FileResult",
    "FileSource",
    "HostSlots",
    "NetworkPolicy",
    "Paused",
    "PendingDownload",
    "Progress",
    "ProgressEvent",
    "Queued",
    "RangeSet",
    "RemoteFile",
    "ResumeState",
    "Resumed",
    "Retrying",
    "Started",
    "TokenBucket",
    "Transfer",
    "TransferOptions",
    "TransferRequest",
    "Verifying",
    "parse_rate",
    "pending_downloads",
    "probe",
    "register_strategy",
    "strategy_for",
]
