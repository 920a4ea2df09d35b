"""Which bytes of a file are on disk: a set of disjoint half-open ranges, merged as they
grow, saved with a download's resume state."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator

__all__ = ["RangeSet"]


class RangeSet:
    """Disjoint, sorted ``[start, end)`` ranges. Not thread-safe: callers hold a lock."""

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in ranges:
            self.add(start, end)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self._starts, self._ends, strict=False)

    def __len__(self) -> int:
        return len(self._starts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RangeSet) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"RangeSet({list(self)!r})"

    @property
    def total(self) -> int:
        """Bytes covered."""
        return sum(end - start for start, end in self)

    def add(self, start: int, end: int) -> None:
        """Covers ``[start, end)``, merging with ranges it touches or overlaps."""
        if end <= start:
            return
        first = bisect_left(self._ends, start)  # the first range ending at or after start
        last = bisect_right(self._starts, end)  # past the last range starting at or before end
        if first < last:
            start = min(start, self._starts[first])
            end = max(end, self._ends[last - 1])
        self._starts[first:last] = [start]
        self._ends[first:last] = [end]

    def remove(self, start: int, end: int) -> None:
        """Uncovers ``[start, end)`` (a piece that failed its hash)."""
        if end <= start:
            return
        first = bisect_right(self._ends, start)  # ranges ending after start
        last = bisect_left(self._starts, end)  # ranges starting before end
        kept_starts: list[int] = []
        kept_ends: list[int] = []
        for index in range(first, last):
            if self._starts[index] < start:
                kept_starts.append(self._starts[index])
                kept_ends.append(start)
            if self._ends[index] > end:
                kept_starts.append(end)
                kept_ends.append(self._ends[index])
        self._starts[first:last] = kept_starts
        self._ends[first:last] = kept_ends

    def covers(self, start: int, end: int) -> bool:
        """Whether all of ``[start, end)`` is covered."""
        if end <= start:
            return True
        index = bisect_right(self._starts, start) - 1
        return index >= 0 and self._ends[index] >= end

    def contiguous_end(self, start: int) -> int:
        """The end of the covered run that contains `start` (`start` when not covered)."""
        index = bisect_right(self._starts, start) - 1
        if index >= 0 and self._ends[index] > start:
            return self._ends[index]
        return start

    def gaps(self, total: int) -> list[tuple[int, int]]:
        """The uncovered ranges of ``[0, total)``."""
        missing = []
        position = 0
        for start, end in self:
            if start >= total:
                break
            if start > position:
                missing.append((position, start))
            position = max(position, end)
        if position < total:
            missing.append((position, total))
        return missing

    def to_list(self) -> list[list[int]]:
        return [[start, end] for start, end in self]
