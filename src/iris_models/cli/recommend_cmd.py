"""Recommend catalog models for this device (or a device profile): what each needs in memory
at the context length asked for, whether it fits, how fast it should decode, and why; best
first. --explain lists every reason; --json prints them all for scripts."""

from __future__ import annotations

import argparse

from ._output import format_bytes, print_json
from ._store_common import add_store_options, say
from .catalog_cmd import TYPES, load_for

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    add_store_options(parser, json_help="print the recommendations as JSON")
    parser.add_argument(
        "--context",
        type=int,
        default=4096,
        metavar="N",
        help="context length to plan for, in tokens (default 4096)",
    )
    parser.add_argument(
        "--profile",
        metavar="NAME|FILE",
        help="plan for a device profile (a shipped name, see `iris-models device --list`, "
        "or a JSON file) instead of this device",
    )
    parser.add_argument("--type", choices=TYPES, help="only models of this type")
    parser.add_argument(
        "--all", action="store_true", help="also list models that cannot run on the device"
    )
    parser.add_argument("--explain", action="store_true", help="list the reasons for each model")
    parser.add_argument(
        "--fetch-headers",
        action="store_true",
        help="read the GGUF header of models whose header is not known yet (a few MB each, "
        "by range request; cached), so their memory need is computed, not guessed",
    )


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from .. import device
    from ..registry import Registry

    if args.context < 1:
        say("iris-models: error: --context must be a positive number of tokens")
        return 2
    profile = device.current(args.profile)
    catalog = load_for(args)
    with Registry(args.store, device=profile, catalog=catalog) as registry:
        recommendations = registry.recommend(
            context_length=args.context,
            type=args.type,
            include_incompatible=args.all,
            fetch_headers=args.fetch_headers,
        )
    if args.json:
        print_json(
            {
                "device": {
                    "name": profile.name,
                    "device_class": profile.device_class.value,
                    "memory_total_bytes": profile.memory.total_bytes,
                },
                "context_length": args.context,
                "recommendations": [r.to_dict() for r in recommendations],
            }
        )
        return 0
    say(
        f"For {profile.name} ({profile.device_class.value}, "
        f"{format_bytes(profile.memory.total_bytes)} RAM) at {args.context} tokens of context:"
    )
    if not recommendations:
        say("No catalog model runs on this device; --all lists them with the reasons.")
        return 0
    table = Table(box=None, pad_edge=False)
    # The backend is in --explain and --json: seven columns do not fit an 80-column terminal.
    for column in ("ID", "CATEGORY", "SCORE", "FIT", "MEMORY", "TOK/S"):
        right = column in ("SCORE", "MEMORY", "TOK/S")
        table.add_column(column, justify="right" if right else "left", no_wrap=True)
    for recommendation in recommendations:
        memory = recommendation.memory
        speed = recommendation.speed
        table.add_row(
            recommendation.model.id,
            recommendation.category.value,
            str(recommendation.score),
            recommendation.fit.value,
            format_bytes(memory.total_bytes) if memory else "-",
            f"{speed.tokens_per_s:.1f}" if speed else "-",
        )
    say(table)
    if not args.explain:
        say("`--explain` lists the reasons behind each row.")
        return 0
    for recommendation in recommendations:
        say("")
        backend = recommendation.backend or "no backend"
        say(f"{recommendation.model.id}: {recommendation.category.value} on {backend}")
        for reason in recommendation.reasons:
            say(f"  - {reason}")
    return 0
