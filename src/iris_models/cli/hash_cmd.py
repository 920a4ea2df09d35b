"""Print the digest of each file as algo:hex, one line per file (like sha256sum), or one
JSON document with --json. Files are hashed in parallel; SHA-256 runs at hardware speed."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._output import EXIT_ERROR, byte_progress, err_console, out_console, print_json

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files to hash")
    parser.add_argument(
        "--algo",
        choices=("sha256", "xxh128", "blake3"),
        default="sha256",
        help="sha256 (default, what catalogs publish) or a fast local seal",
    )
    parser.add_argument("--workers", type=int, default=None, help="files hashed at once")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def run(args: argparse.Namespace) -> int:
    from ..verify import digest_many

    with byte_progress(f"hashing ({args.algo})", enabled=not args.json) as on_progress:
        results = digest_many(args.paths, args.algo, workers=args.workers, on_progress=on_progress)
    if args.json:
        print_json(
            [
                {
                    "path": str(r.path),
                    "digest": str(r.digest) if r.digest else None,
                    "size": r.size,
                    "error": r.error,
                }
                for r in results
            ]
        )
    else:
        for result in results:
            if result.digest is not None:
                out_console.print(f"{result.digest}  {result.path}", markup=False, soft_wrap=True)
            else:
                err_console.print(f"iris-models: error: {result.error}", markup=False)
    return EXIT_ERROR if any(r.error for r in results) else 0
