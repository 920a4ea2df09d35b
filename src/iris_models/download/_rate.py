"""Limits shared by every transfer: a bandwidth cap (a token bucket, safe to use from many
threads, with the ``10M`` / ``512K`` notation the CLI takes) and a cap on connections per
host."""

from __future__ import annotations

import re
import threading
import time

__all__ = ["HostSlots", "TokenBucket", "parse_rate"]

_RATE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmg]?)(i?b?)(?:/s)?", re.IGNORECASE)
_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def parse_rate(text: str) -> int:
    """Bytes per second from ``500K``, ``10M``, ``1.5MiB/s``, ``2G`` or a plain number
    (K, M and G are powers of 1024, as in curl's --limit-rate). Raises ValueError."""
    match = _RATE.fullmatch(text.strip())
    if match is None:
        message = f"not a rate: {text!r} (examples: 500K, 10M, 1.5M, 2G: bytes per second)"
        raise ValueError(message)
    value = float(match.group(1)) * _UNITS[match.group(2).lower()]
    if value < 1:
        message = f"a rate must be at least 1 byte per second, not {text!r}"
        raise ValueError(message)
    return int(value)


class TokenBucket:
    """At most `rate_bytes_per_s` on average, with bursts up to `burst_bytes` (a quarter
    of a second's worth by default, so that a cap stays smooth)."""

    def __init__(self, rate_bytes_per_s: int, *, burst_bytes: int | None = None) -> None:
        if rate_bytes_per_s <= 0:
            message = f"rate_bytes_per_s must be positive, not {rate_bytes_per_s}"
            raise ValueError(message)
        if burst_bytes is not None and burst_bytes <= 0:
            message = f"burst_bytes must be positive, not {burst_bytes}"
            raise ValueError(message)
        self.rate_bytes_per_s = rate_bytes_per_s
        self.burst_bytes = burst_bytes or max(rate_bytes_per_s // 4, 16 * 1024)
        self._tokens = float(self.burst_bytes)
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def take(self, wanted: int, *, cancelled: threading.Event | None = None) -> int:
        """Waits until some bytes may be read and returns how many (at most `wanted`, at
        least 1 unless `cancelled` was set while waiting, then 0; 0 for `wanted` 0)."""
        if wanted <= 0:
            return 0
        wanted = min(wanted, self.burst_bytes)
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(
                    self.burst_bytes, self._tokens + (now - self._updated) * self.rate_bytes_per_s
                )
                self._updated = now
                if self._tokens >= 1:
                    granted = int(min(wanted, self._tokens))
                    self._tokens -= granted
                    return granted
                wait_s = (1 - self._tokens) / self.rate_bytes_per_s
            wait_s = max(wait_s, 0.005)
            if cancelled is not None:
                if cancelled.wait(wait_s):
                    return 0
            else:
                time.sleep(wait_s)

    def give_back(self, unused: int) -> None:
        """Returns tokens a read did not use (it got fewer bytes than it was granted)."""
        if unused > 0:
            with self._lock:
                self._tokens = min(self.burst_bytes, self._tokens + unused)


class HostSlots:
    """At most `per_host` connections open to any one host at a time, across every transfer
    that shares this object: several files and models from one hub do not open more than a
    polite number of connections to it between them."""

    def __init__(self, per_host: int = 8) -> None:
        if per_host < 1:
            message = f"per_host must be at least 1, not {per_host}"
            raise ValueError(message)
        self.per_host = per_host
        self._open: dict[str, int] = {}
        self._changed = threading.Condition()

    def acquire(self, host: str, *, cancelled: threading.Event | None = None) -> bool:
        """Waits for a free slot for `host`; False if `cancelled` was set first."""
        key = host.lower()
        with self._changed:
            while self._open.get(key, 0) >= self.per_host:
                if cancelled is not None and cancelled.is_set():
                    return False
                self._changed.wait(0.1)
            self._open[key] = self._open.get(key, 0) + 1
            return True

    def release(self, host: str) -> None:
        key = host.lower()
        with self._changed:
            count = self._open.get(key, 0) - 1
            if count > 0:
                self._open[key] = count
            else:
                self._open.pop(key, None)
            self._changed.notify_all()

    def open_connections(self, host: str) -> int:
        with self._changed:
            return self._open.get(host.lower(), 0)
