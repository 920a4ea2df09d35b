"""Split (sharded) GGUF models: the ``<prefix>-00001-of-00003.gguf`` naming and the
``split.*`` keys that tie shards together."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["SHARD_NAME", "shard_name", "sibling_shard_paths"]

# gguf-py's SHARD_NAME_FORMAT and llama.cpp's gguf-split write 1-based, 5-digit numbers.
SHARD_NAME = re.compile(r"^(?P<prefix>.*)-(?P<shard>\d{5})-of-(?P<total>\d{5})\.gguf$")


def shard_name(prefix: str, shard: int, total: int) -> str:
    """The file name of 1-based shard ``shard`` of ``total``."""
    return f"{prefix}-{shard:05d}-of-{total:05d}.gguf"


def sibling_shard_paths(path: Path) -> list[Path] | None:
    """Every shard's path for a file named like a shard, in order; None for other names."""
    match = SHARD_NAME.match(path.name)
    if match is None:
        return None
    total = int(match["total"])
    if total < 1:
        return None
    prefix = match["prefix"]
    return [path.with_name(shard_name(prefix, shard, total)) for shard in range(1, total + 1)]
