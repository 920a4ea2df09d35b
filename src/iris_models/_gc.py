"""Pausing Python's cyclic garbage collector around bulk work that allocates many objects
and creates no reference cycles (parsing and ranking a large catalog)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["collector_paused"]


@contextmanager
def collector_paused() -> Iterator[None]:
    """Holds the cyclic collector off for the block, then restores it as it was.

    Each burst of allocations would otherwise start collections that walk every object the
    block has made so far: on a 10,000-model catalog that was a third of the load time.
    Reference counting still frees everything; cycles made meanwhile wait for the next
    collection after the block."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
