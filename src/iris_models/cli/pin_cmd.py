"""Pin a model so that eviction never removes it, unpin it, or set its eviction priority
(low, normal, high, critical: lower tiers go first; critical only in aggressive cleanup)."""

from __future__ import annotations

import argparse

from ._output import print_json
from ._store_common import add_store_options, open_store, say

__all__ = [
    "configure_pin",
    "configure_priority",
    "configure_unpin",
    "run_pin",
    "run_priority",
    "run_unpin",
]


def configure_pin(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_id", metavar="ID")
    add_store_options(parser, json_help="print the result as JSON")


configure_unpin = configure_pin


def configure_priority(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_id", metavar="ID")
    parser.add_argument("level", choices=("low", "normal", "high", "critical"))
    add_store_options(parser, json_help="print the result as JSON")


def run_pin(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        store.pin(args.model_id)
    return _done(args, {"model_id": args.model_id, "pinned": True}, f"pinned {args.model_id}")


def run_unpin(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        store.unpin(args.model_id)
    return _done(args, {"model_id": args.model_id, "pinned": False}, f"unpinned {args.model_id}")


def run_priority(args: argparse.Namespace) -> int:
    with open_store(args) as store:
        store.set_priority(args.model_id, args.level)
    result = {"model_id": args.model_id, "priority": args.level}
    return _done(args, result, f"{args.model_id}: priority {args.level}")


def _done(args: argparse.Namespace, result: dict[str, object], text: str) -> int:
    if args.json:
        print_json(result)
    else:
        say(text)
    return 0
