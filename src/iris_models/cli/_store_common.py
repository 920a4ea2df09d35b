"""What the store commands share: the --store option, opening the store, and how times and
lifecycle states are shown."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._output import out_console

if TYPE_CHECKING:
    from ..store import Store

__all__ = ["add_store_options", "format_ago", "open_store", "say"]


def add_store_options(parser: argparse.ArgumentParser, *, json_help: str | None = None) -> None:
    parser.add_argument(
        "--store",
        metavar="DIR",
        help="the model store (default: IRIS_MODELS_HOME, else the user data folder)",
    )
    if json_help is not None:
        parser.add_argument("--json", action="store_true", help=json_help)


def open_store(args: argparse.Namespace, *, auto_cleanup: bool = False) -> Store:
    """The store named by --store. Only commands that add to the store pass
    ``auto_cleanup``: listing or asking for a path never evicts anything."""
    from ..store import Store

    return Store(args.store, auto_cleanup=auto_cleanup)


def format_ago(timestamp: float | None) -> str:
    from ..store._eviction import format_ago as ago

    return "never" if timestamp is None else ago(timestamp)


def say(*objects: Any, markup: bool = False, soft_wrap: bool = True) -> None:
    """Prints to stdout without folding long lines (paths stay whole when piped)."""
    out_console.print(*objects, markup=markup, soft_wrap=soft_wrap)
