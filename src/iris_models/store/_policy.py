"""The cache policy: how big the store may grow, how much disk must stay free, which models go
first when space is needed, and how often cleanup runs."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields, replace
from decimal import Decimal, InvalidOperation
from enum import Enum, IntEnum
from typing import Any, TypeVar

from ..errors import StorePolicyError

__all__ = ["CachePolicy", "EvictionPolicy", "Priority", "parse_choice", "parse_size"]

DEFAULT_MIN_FREE_BYTES = 500_000_000  # the spec's 500 MB (decimal)
DEFAULT_CLEANUP_INTERVAL_S = 24 * 60 * 60


class EvictionPolicy(str, Enum):
    """Which model goes first within a priority tier."""

    LRU = "lru"
    """Least recently used (never used: installed longest ago)."""
    LFU = "lfu"
    """Least often used; ties go to the least recently used."""
    FIFO = "fifo"
    """Installed longest ago."""
    LARGEST_FIRST = "largest_first"
    """Largest first: the fewest models removed for the bytes needed."""


class Priority(IntEnum):
    """Lower tiers are evicted first; CRITICAL only by an aggressive cleanup."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    CRITICAL = 3

    @classmethod
    def parse(cls, value: str | int | Priority) -> Priority:
        if isinstance(value, Priority):
            return value
        if isinstance(value, int):
            try:
                return cls(value)
            except ValueError:
                pass
        elif value.upper() in cls.__members__:
            return cls[value.upper()]
        known = ", ".join(member.name.lower() for member in cls)
        message = f"unknown priority {value!r}; known: {known}"
        raise StorePolicyError(message)


@dataclass(frozen=True)
class CachePolicy:
    """Limits and eviction order for one store; saved in the store's database.

    The reference SDK caps its cache at 1 GiB by default; a single language model is larger
    than that, so here the store size is unlimited unless set, and the free-disk floor (500
    MB, as in the spec) is what protects the device.
    """

    max_size_bytes: int | None = None
    """The most the store's own files may take (None: no limit)."""
    min_free_bytes: int = DEFAULT_MIN_FREE_BYTES
    """Disk space to keep free on the store's file system."""
    eviction: EvictionPolicy = EvictionPolicy.LRU
    cleanup_interval_s: float = DEFAULT_CLEANUP_INTERVAL_S
    """Automatic cleanup runs when the store is opened and this long has passed."""
    auto_cleanup: bool = True
    aggressive: bool = False
    """Whether cleanup may evict CRITICAL models too."""

    def __post_init__(self) -> None:
        if self.max_size_bytes is not None and self.max_size_bytes < 0:
            message = f"max_size_bytes must be positive or None, not {self.max_size_bytes}"
            raise StorePolicyError(message)
        if self.min_free_bytes < 0:
            message = f"min_free_bytes must not be negative, not {self.min_free_bytes}"
            raise StorePolicyError(message)
        if not self.cleanup_interval_s >= 0:
            message = f"cleanup_interval_s must not be negative, not {self.cleanup_interval_s}"
            raise StorePolicyError(message)
        if not isinstance(self.eviction, EvictionPolicy):
            object.__setattr__(self, "eviction", _parse_eviction(self.eviction))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["eviction"] = self.eviction.value
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CachePolicy:
        known = {field.name for field in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})

    def with_setting(self, key: str, text: str) -> CachePolicy:
        """A copy with one setting changed from text, as ``policy set KEY VALUE`` gives it:
        sizes as ``20GB``/``1.5GiB``/``none``, intervals in seconds or ``12h``/``7d``."""
        name = key.replace("-", "_")
        if name == "max_size":
            name = "max_size_bytes"
        elif name == "min_free":
            name = "min_free_bytes"
        elif name in ("interval", "cleanup_interval"):
            name = "cleanup_interval_s"
        value: Any
        if name == "max_size_bytes":
            value = None if text.lower() in ("none", "unlimited", "") else parse_size(text)
        elif name == "min_free_bytes":
            value = parse_size(text)
        elif name == "eviction":
            value = _parse_eviction(text)
        elif name == "cleanup_interval_s":
            value = _parse_duration(text)
        elif name in ("auto_cleanup", "aggressive"):
            value = _parse_bool(text)
        else:
            settable = "max-size, min-free, eviction, interval, auto-cleanup, aggressive"
            message = f"unknown policy setting {key!r}; settable: {settable}"
            raise StorePolicyError(message)
        return replace(self, **{name: value})


def _parse_eviction(value: object) -> EvictionPolicy:
    return parse_choice(EvictionPolicy, str(value).lower().replace("-", "_"), "eviction policy")


E = TypeVar("E", bound=Enum)


def parse_choice(kind: type[E], value: object, what: str) -> E:
    """``kind(value)``, or a StorePolicyError that names ``what`` and the known values."""
    try:
        return kind(value)
    except ValueError:
        known = ", ".join(str(member.value) for member in kind)
        message = f"unknown {what} {value!r}; known: {known}"
        raise StorePolicyError(message) from None


_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*")
_SIZE_UNITS = {
    "": 1, "b": 1,
    "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
    "t": 10**12, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}  # fmt: skip


def parse_size(text: str) -> int:
    """Bytes from ``500MB``, ``1.5 GiB``, ``20G`` or a plain number (decimal units unless
    ``iB``)."""
    match = _SIZE.fullmatch(text)
    unit = match.group(2).lower() if match else None
    if match is None or unit not in _SIZE_UNITS:
        message = f"not a size: {text!r} (examples: 500MB, 1.5GiB, 20G, 1000000)"
        raise StorePolicyError(message)
    try:
        return int(Decimal(match.group(1)) * _SIZE_UNITS[unit])
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimals
        message = f"not a size: {text!r}"
        raise StorePolicyError(message) from None


_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhd]?)\s*")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def _parse_duration(text: str) -> float:
    match = _DURATION.fullmatch(text.lower())
    if match is None:
        message = f"not a duration: {text!r} (examples: 3600, 12h, 7d)"
        raise StorePolicyError(message)
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    message = f"not a yes/no value: {text!r} (use true or false)"
    raise StorePolicyError(message)
