"""Show or change the store's cache policy: max-size (20GB, 1.5GiB, none), min-free (the
free-disk floor, 500MB by default), eviction (lru, lfu, fifo, largest_first), interval
(between automatic cleanups: 24h), auto-cleanup and aggressive (true/false)."""

from __future__ import annotations

import argparse

from ._output import format_bytes, print_json
from ._store_common import add_store_options, open_store, say

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("show", "set"))
    parser.add_argument(
        "settings", nargs="*", metavar="KEY VALUE", help="for set: pairs such as max-size 20GB"
    )
    add_store_options(parser, json_help="print the policy as JSON")


def run(args: argparse.Namespace) -> int:
    from ..errors import StorePolicyError

    with open_store(args, auto_cleanup=False) as store:
        policy = store.policy
        if args.action == "set":
            if not args.settings or len(args.settings) % 2:
                message = "policy set takes KEY VALUE pairs, e.g. `policy set max-size 20GB`"
                raise StorePolicyError(message)
            pairs = zip(args.settings[::2], args.settings[1::2], strict=True)
            for key, value in pairs:
                policy = policy.with_setting(key, value)
            store.set_policy(policy)
        elif args.settings:
            message = "policy show takes no settings"
            raise StorePolicyError(message)
    if args.json:
        print_json(policy.to_dict())
        return 0
    limit = policy.max_size_bytes
    interval_h = policy.cleanup_interval_s / 3600
    for key, value in (
        ("max-size", "none" if limit is None else f"{format_bytes(limit)} ({limit} bytes)"),
        ("min-free", f"{format_bytes(policy.min_free_bytes)} ({policy.min_free_bytes} bytes)"),
        ("eviction", policy.eviction.value),
        ("interval", f"{interval_h:g}h"),
        ("auto-cleanup", str(policy.auto_cleanup).lower()),
        ("aggressive", str(policy.aggressive).lower()),
    ):
        say(f"{key:<13}{value}")
    return 0
