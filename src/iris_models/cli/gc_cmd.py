"""Enforce the cache policy now: delete leftovers of interrupted work, then evict models in
policy order until the store is within its size limit and the free-disk floor holds.
--dry-run prints the plan (which models, how many bytes, why) and changes nothing."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ._output import format_bytes, out_console, print_json
from ._store_common import add_store_options, open_store

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
        out_console.print("dry run: nothing was removed", markup=False)
        return 0
    for model_id, why in outcome.result.skipped:
        out_console.print(f"skipped {model_id}: {why}", markup=False)
    out_console.print(f"freed {format_bytes(outcome.result.bytes_freed)}", markup=False)
    return 0


def print_plan(plan: EvictionPlan) -> None:
    if not plan.needs and not plan.leftovers:
        out_console.print("The store is within its policy: nothing to free.", markup=False)
        return
    for need in plan.needs:
        out_console.print(f"needs {format_bytes(need.bytes)}: {need.reason}", markup=False)
    for leftover in plan.leftovers:
        out_console.print(
            f"  delete {leftover.path} ({format_bytes(leftover.size_bytes)}): {leftover.reason}",
            markup=False,
        )
    for item in plan.evictions:
        out_console.print(
            f"  evict {item.model_id} ({format_bytes(item.size_bytes)}): {item.reason}",
            markup=False,
        )
    if plan.protected:
        kept = ", ".join(
            f"{count} {why.replace('_', ' ')}" for why, count in plan.protected.items()
        )
        out_console.print(f"  passed over: {kept}", markup=False)
    out_console.print(
        f"plan frees {format_bytes(plan.bytes_freed)}"
        + ("" if plan.satisfied else f"; still short by {format_bytes(plan.shortfall_bytes)}"),
        markup=False,
    )
