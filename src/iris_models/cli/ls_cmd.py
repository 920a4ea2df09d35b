"""List the models in the store: state, size, architecture, quantization, uses, last use,
pins and priorities, and which are in use right now."""

from __future__ import annotations

import argparse

from ._output import format_bytes, print_json
from ._store_common import add_store_options, format_ago, open_store, say

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    add_store_options(parser, json_help="print the models as JSON")
    parser.add_argument("--category", help="only models of this category (llm, embedding, ...)")


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from ..store._locks import locked_model_ids

    with open_store(args) as store:
        models = store.list_models(category=args.category)
        in_use = locked_model_ids(store.root)
        if args.json:
            print_json(
                [dict(model.to_dict(), in_use=model.id.lower() in in_use) for model in models]
            )
            return 0
        if not models:
            say(
                f"No models in {store.root}. Add some with `iris-models import PATH`.",
            )
            return 0
        table = Table(box=None, pad_edge=False)
        for column in ("ID", "STATE", "SIZE", "ARCH", "QUANT", "USES", "LAST USED", "FLAGS"):
            right = column in ("SIZE", "USES")
            table.add_column(column, justify="right" if right else "left", no_wrap=column == "ID")
        for model in models:
            flags = []
            if model.pinned:
                flags.append("pinned")
            if model.priority.name != "NORMAL":
                flags.append(model.priority.name.lower())
            if model.storage != "managed":
                flags.append(model.storage)
            if model.id.lower() in in_use:
                flags.append("in use")
            table.add_row(
                model.id,
                model.state.value,
                format_bytes(model.size_bytes),
                model.architecture or "-",
                model.quantization or "-",
                str(model.use_count),
                format_ago(model.last_used_at),
                ", ".join(flags),
            )
        say(table)
        total = sum(model.size_bytes for model in models if model.storage == "managed")
        say(f"{len(models)} models, {format_bytes(total)} in {store.root}")
    return 0
