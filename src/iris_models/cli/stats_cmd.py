"""Storage statistics: bytes by model, category and state, use counts and last use, the
disk, the policy, and what eviction freed and when."""

from __future__ import annotations

import argparse
import time

from ._output import format_bytes, print_json
from ._store_common import add_store_options, format_ago, open_store, say

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    add_store_options(parser, json_help="print the statistics as JSON")


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    with open_store(args) as store:
        stats = store.stats()
    if args.json:
        print_json(stats.to_dict())
        return 0
    say(f"store {stats.root}")
    say(
        f"{stats.model_count} models: {format_bytes(stats.owned_bytes)} owned, "
        f"{format_bytes(stats.referenced_bytes)} referenced; {stats.total_uses} uses",
    )
    say(
        f"disk: {format_bytes(stats.disk_free_bytes)} free of {format_bytes(stats.disk_total_bytes)}",
    )
    limit = stats.policy.max_size_bytes
    say(
        f"policy: {stats.policy.eviction.value}, max size "
        f"{'unlimited' if limit is None else format_bytes(limit)}, keep "
        f"{format_bytes(stats.policy.min_free_bytes)} free; last cleanup "
        f"{format_ago(stats.last_cleanup_at)}",
    )
    if stats.bytes_by_category:
        by_category = ", ".join(
            f"{name} {format_bytes(size)}" for name, size in sorted(stats.bytes_by_category.items())
        )
        say(f"by category: {by_category}")
    if stats.models:
        table = Table(box=None, pad_edge=False)
        for column in ("ID", "CATEGORY", "STATE", "SIZE", "USES", "LAST USED"):
            table.add_column(column, justify="right" if column in ("SIZE", "USES") else "left")
        for model in stats.models:
            table.add_row(
                model.id,
                model.category,
                model.state,
                format_bytes(model.size_bytes),
                str(model.use_count),
                format_ago(model.last_used_at),
            )
        say(table)
    say(
        f"evicted so far: {stats.evicted_count} models, {format_bytes(stats.evicted_bytes)}",
    )
    for event in stats.recent_evictions:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(event.at))
        say(
            f"  {when}  {event.model_id}  {format_bytes(event.bytes)}  {event.detail or ''}",
        )
    return 0
