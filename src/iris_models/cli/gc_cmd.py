"""Enforce the cache policy now: delete leftovers of interrupted work, then evict models in
policy order until the store is within its size limit and the free-disk floor holds.
--dry-run prints the plan (which models, how many bytes, why) and changes nothing."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ._output import format_bytes, print_json
from ._store_common import add_store_options, open_store, say

if TYPE_CHECKING:
    from ..store import EvictionPlan

__all__ = ["configure", "print_plan", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="print the plan; remove nothing")
    parser.add_argument(
        "--aggressive", action="store_true", help="allow evicting critical-priority models"
    )
    add_store_options(parser, json_help="print the plan and the result as JSON")


def run(args: argparse.Namespace) -> int:
    with open_store(args, auto_cleanup=False) as store:
        outcome = store.gc(dry_run=args.dry_run, aggressive=True if args.aggressive else None)
    if args.json:
        print_json(outcome.to_dict())
        return 0
    print_plan(outcome.plan)
    if outcome.result is None:
        say("dry run: nothing was removed")
        return 0
    for model_id, why in outcome.result.skipped:
        say(f"skipped {model_id}: {why}")
    say(f"freed {format_bytes(outcome.result.bytes_freed)}")
    return 0


def print_plan(plan: EvictionPlan) -> None:
    if not plan.needs and not plan.leftovers:
        say("The store is within its policy: nothing to free.")
        return
    for need in plan.needs:
        say(f"needs {format_bytes(need.bytes)}: {need.reason}")
    for leftover in plan.leftovers:
        say(
            f"  delete {leftover.path} ({format_bytes(leftover.size_bytes)}): {leftover.reason}",
        )
    for item in plan.evictions:
        say(
            f"  evict {item.model_id} ({format_bytes(item.size_bytes)}): {item.reason}",
        )
    if plan.protected:
        kept = ", ".join(
            f"{count} {why.replace('_', ' ')}" for why, count in plan.protected.items()
        )
        say(f"  passed over: {kept}")
    say(
        f"plan frees {format_bytes(plan.bytes_freed)}"
        + ("" if plan.satisfied else f"; still short by {format_bytes(plan.shortfall_bytes)}"),
    )
