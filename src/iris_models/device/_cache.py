"""A small on-disk cache for probe results, keyed by a fingerprint of what they depend on.

A result is reused only while its fingerprint matches: the same boot, the same driver files,
the same environment variables. Writes are atomic (a reader never sees half a file), and a
cache that cannot be read or written is ignored: probing still works, only slower.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from .._paths import cache_root

CACHE_FORMAT = 1


def cache_file(name: str) -> Path:
    return cache_root() / "device" / f"{name}.json"


def fingerprint(parts: dict[str, Any]) -> str:
    # The canonical text itself, not a hash of it: compared whole, and hashlib's import
    # (OpenSSL) would cost a cached probe more than the comparison does.
    return json.dumps(parts, sort_keys=True, default=str)


def load(name: str, key: str) -> Any | None:
    """The cached value stored under `name` with fingerprint `key`, or None."""
    try:
        data = json.loads(cache_file(name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("format") != CACHE_FORMAT or data.get("fingerprint") != key:
        return None
    return data.get("value")


def store(name: str, key: str, value: Any) -> None:
    import tempfile  # only when writing: a cache hit should not pay for the import

    path = cache_file(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{name}.", suffix=".tmp")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump({"format": CACHE_FORMAT, "fingerprint": key, "value": value}, out)
        Path(temporary).replace(path)
    except OSError:
        with contextlib.suppress(OSError, UnboundLocalError):
            Path(temporary).unlink()


def boot_marker() -> str:
    """Changes at every boot: drivers and memory configuration can change with it. The
    kernel's boot id where there is one (cheap), else psutil's boot time."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        import psutil

        return str(round(psutil.boot_time()))
