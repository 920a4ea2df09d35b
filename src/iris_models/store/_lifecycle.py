"""A model's lifecycle: the states, the one table of allowed transitions, and the record an
observer receives for each change."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

from ..errors import LifecycleError

__all__ = [
    "INSTALLED_STATES",
    "TRANSITIONS",
    "LifecycleObserver",
    "LifecycleState",
    "StateChange",
    "check_transition",
]


class LifecycleState(str, Enum):
    """The reference SDK's sixteen states, plus QUEUED and PAUSED for resumable downloads.

    The store itself moves a model through DISCOVERED, QUEUED, DOWNLOADING, PAUSED,
    DOWNLOADED, VALIDATING, VALIDATED, READY, CLEANUP and ERROR. INITIALIZING to EXECUTING
    belong to an inference engine that loads the model; an app that embeds one may record
    them with ``Store.transition``. A model can be used and evicted only when it is READY
    (or in one of the engine states that follow it).
    """

    UNINITIALIZED = "uninitialized"
    DISCOVERED = "discovered"
    QUEUED = "queued"
    DOWNLOADING = "downloading"
    PAUSED = "paused"
    DOWNLOADED = "downloaded"
    EXTRACTING = "extracting"
    EXTRACTED = "extracted"
    VALIDATING = "validating"
    VALIDATED = "validated"
    INITIALIZING = "initializing"
    INITIALIZED = "initialized"
    LOADING = "loading"
    LOADED = "loaded"
    READY = "ready"
    EXECUTING = "executing"
    ERROR = "error"
    CLEANUP = "cleanup"

    @property
    def is_processing(self) -> bool:
        """Work is under way (as the reference SDK defines it), plus a queued download."""
        return self in _PROCESSING

    @property
    def is_installed(self) -> bool:
        """The files are complete and verified: the model can be used, and evicted."""
        return self in _INSTALLED


_S = LifecycleState

_PROCESSING = frozenset(
    {_S.QUEUED, _S.DOWNLOADING, _S.EXTRACTING, _S.VALIDATING, _S.INITIALIZING, _S.LOADING,
     _S.EXECUTING}
)  # fmt: skip
_INSTALLED = frozenset(
    {_S.VALIDATED, _S.INITIALIZING, _S.INITIALIZED, _S.LOADING, _S.LOADED, _S.READY,
     _S.EXECUTING}
)  # fmt: skip

# The values of the installed states, for SQL: "state IN (...)".
INSTALLED_STATES = tuple(state.value for state in _INSTALLED)

# The reference SDK's table (shared/reference/probe-recommend-lifecycle.md, 1.1) with what a
# store adds: QUEUED and PAUSED around a download; CLEANUP from any resting state, since a
# queued, paused or broken model can be removed; VALIDATED -> READY for a model that no
# engine loads; READY -> VALIDATING to verify an installed model again; READY ->
# INITIALIZING for an engine that loads an installed model; INITIALIZED -> ERROR, so that
# no state is a dead end.
TRANSITIONS: Mapping[LifecycleState, frozenset[LifecycleState]] = {
    _S.UNINITIALIZED: frozenset({_S.DISCOVERED}),
    _S.DISCOVERED: frozenset({_S.QUEUED, _S.DOWNLOADING, _S.VALIDATING, _S.VALIDATED, _S.CLEANUP}),
    _S.QUEUED: frozenset({_S.DOWNLOADING, _S.PAUSED, _S.ERROR, _S.CLEANUP}),
    _S.DOWNLOADING: frozenset({_S.DOWNLOADED, _S.PAUSED, _S.ERROR, _S.CLEANUP}),
    _S.PAUSED: frozenset({_S.QUEUED, _S.DOWNLOADING, _S.ERROR, _S.CLEANUP}),
    _S.DOWNLOADED: frozenset({_S.EXTRACTING, _S.VALIDATING, _S.ERROR}),
    _S.EXTRACTING: frozenset({_S.EXTRACTED, _S.ERROR}),
    _S.EXTRACTED: frozenset({_S.VALIDATING, _S.ERROR}),
    _S.VALIDATING: frozenset({_S.VALIDATED, _S.ERROR}),
    _S.VALIDATED: frozenset({_S.INITIALIZING, _S.READY, _S.CLEANUP}),
    _S.INITIALIZING: frozenset({_S.INITIALIZED, _S.ERROR}),
    _S.INITIALIZED: frozenset({_S.LOADING, _S.ERROR}),
    _S.LOADING: frozenset({_S.LOADED, _S.ERROR}),
    _S.LOADED: frozenset({_S.READY, _S.ERROR}),
    _S.READY: frozenset({_S.EXECUTING, _S.VALIDATING, _S.INITIALIZING, _S.CLEANUP}),
    _S.EXECUTING: frozenset({_S.READY, _S.ERROR}),
    _S.ERROR: frozenset({_S.DISCOVERED, _S.CLEANUP}),
    _S.CLEANUP: frozenset({_S.UNINITIALIZED}),
}


def check_transition(model_id: str, from_state: LifecycleState, to_state: LifecycleState) -> None:
    """Raises LifecycleError unless the table allows ``from_state -> to_state``."""
    if to_state in TRANSITIONS[from_state]:
        return
    allowed = ", ".join(sorted(state.value for state in TRANSITIONS[from_state]))
    message = (
        f"model {model_id!r} cannot go from {from_state.value} to {to_state.value}; "
        f"from {from_state.value} it can go to: {allowed}"
    )
    raise LifecycleError(
        message, model_id=model_id, from_state=from_state.value, to_state=to_state.value
    )


@dataclass(frozen=True)
class StateChange:
    """One lifecycle change, as observers receive it and the event log keeps it."""

    model_id: str
    from_state: LifecycleState
    to_state: LifecycleState
    at: float
    """Seconds since the epoch."""
    reason: str | None = None


LifecycleObserver = Callable[[StateChange], None]
