"""Print the path of an installed model's file (the first shard of a split model), for
scripts: `llama-cli -m "$(iris-models path gemma-3-270m-q4_k_m)"`."""

from __future__ import annotations

import argparse

from ._output import print_json
from ._store_common import add_store_options, open_store

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_id", metavar="ID")
    add_store_options(parser, json_help="print the path and every file as JSON")


def run(args: argparse.Namespace) -> int:
    import sys

    with open_store(args) as store:
        path = store.path(args.model_id)
        if args.json:
            model = store.get(args.model_id)
            print_json({"model_id": model.id, "path": str(path),
                        "files": [f.to_dict() for f in model.files]})  # fmt: skip
        else:
            sys.stdout.write(f"{path}\n")
    return 0
