"""Adopt GGUF models already on disk: one file, a folder of them, a Hugging Face cache
(~/.cache/huggingface/hub) or an Ollama models folder (~/.ollama/models). Each is parsed
and hashed; by default the files stay where they are (--mode reference), so nothing is
copied. --mode hardlink, move or copy put them inside the store."""

from __future__ import annotations

import argparse

from ._output import EXIT_ERROR, byte_progress, format_bytes, print_json
from ._store_common import add_store_options, open_store, say

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", metavar="PATH", help="a .gguf file or a folder")
    parser.add_argument(
        "--mode",
        choices=("reference", "hardlink", "move", "copy"),
        default="reference",
        help="how files enter the store (default: reference, leave them where they are)",
    )
    parser.add_argument("--id", dest="model_id", help="the model id (one model only)")
    parser.add_argument("--category", default="llm", help="the category to record (default: llm)")
    add_store_options(parser, json_help="print what was imported and skipped as JSON")


def run(args: argparse.Namespace) -> int:
    with (
        open_store(args, auto_cleanup=True) as store,
        byte_progress("hashing", enabled=not args.json) as progress,
    ):
        report = store.import_path(
            args.path,
            placement=args.mode,
            model_id=args.model_id,
            category=args.category,
            on_progress=lambda _model, done, total: progress(done, total),
        )
    if args.json:
        print_json(report.to_dict())
    else:
        for model in report.imported:
            say(
                f"imported {model.id} ({format_bytes(model.size_bytes)}, {model.storage}) "
                f"from {model.source}",
            )
        for skip in report.skipped:
            say(f"skipped {skip.path}: {skip.reason}")
        if not report.imported and not report.skipped:
            say(f"no GGUF models found in {args.path}")
    return EXIT_ERROR if not report.imported and report.skipped else 0
