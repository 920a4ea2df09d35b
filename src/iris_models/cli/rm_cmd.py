"""Remove models from the store and delete their files (a model imported by reference is only
forgotten: its file stays). A model in use by any process is refused."""

from __future__ import annotations

import argparse

from ._output import EXIT_ERROR, err_console, format_bytes, print_json
from ._store_common import add_store_options, open_store, say

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_ids", nargs="+", metavar="ID", help="the models to remove")
    add_store_options(parser, json_help="print what was removed as JSON")


def run(args: argparse.Namespace) -> int:
    from ..errors import StoreError

    removed = []
    failed = []
    with open_store(args) as store:
        for model_id in args.model_ids:
            try:
                freed = store.remove(model_id)
            except StoreError as error:
                failed.append({"model_id": model_id, "error": str(error)})
                if not args.json:
                    err_console.print(f"iris-models: error: {error}", markup=False, soft_wrap=True)
                continue
            removed.append({"model_id": model_id, "bytes_freed": freed})
            if not args.json:
                say(f"removed {model_id} ({format_bytes(freed)} freed)")
    if args.json:
        print_json({"removed": removed, "failed": failed})
    return EXIT_ERROR if failed else 0
