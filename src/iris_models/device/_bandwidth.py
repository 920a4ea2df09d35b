"""Memory read bandwidth, measured once per boot and cached: the number that bounds how fast
a CPU can generate tokens (each token streams every weight once)."""

from __future__ import annotations

from typing import Any

from . import _cache

BUFFER_BYTES = 128 << 20  # several times any phone's or laptop's last-level cache
MIN_BUFFER_BYTES = 16 << 20
TIME_BUDGET_S = 0.2


def measure(threads: int, available_bytes: int | None, *, refresh: bool = False) -> dict[str, Any]:
    """{"read_bytes_per_s", "threads", "buffer_bytes", "passes", "elapsed_s"}, from the cache
    while the boot, CPU count and memory size are the same."""
    from .. import _core

    buffer_bytes = BUFFER_BYTES
    if available_bytes:  # never take more than an eighth of what is free
        buffer_bytes = max(MIN_BUFFER_BYTES, min(buffer_bytes, available_bytes // 8))
    key = _cache.fingerprint(
        {"boot": _cache.boot_marker(), "threads": threads, "buffer_bytes": buffer_bytes}
    )
    if not refresh:
        cached = _cache.load("bandwidth", key)
        if isinstance(cached, dict) and isinstance(cached.get("read_bytes_per_s"), (int, float)):
            return cached
    measured = dict(_core.measure_read_bandwidth(threads, buffer_bytes, TIME_BUDGET_S))
    _cache.store("bandwidth", key, measured)
    return measured
