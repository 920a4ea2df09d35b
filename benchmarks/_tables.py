"""Plain-text tables for the benchmarks' printed results. Imported as a sibling module: the
benchmarks run as scripts from this folder."""

from __future__ import annotations

from collections.abc import Sequence


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=True)]

    def line(cells: Sequence[str]) -> str:
        # First column left-aligned (names), the rest right-aligned (numbers).
        parts = [f"{cells[0]:<{widths[0]}}"]
        parts += [f"{cell:>{width}}" for cell, width in zip(cells[1:], widths[1:], strict=True)]
        return " | ".join(parts)

    rule = "-+-".join("-" * width for width in widths)
    return "\n".join([line(headers), rule, *(line(row) for row in rows)])
