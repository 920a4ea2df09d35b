"""Check the store after a crash: the database's integrity, every installed model's files
(present, right size, re-hashed when changed), leftovers of interrupted installs and
removals, and folders the database does not know. --repair fixes what it finds; a damaged
database is moved aside and the store rebuilt from the model files. Exit status 1 when
problems remain."""

from __future__ import annotations

import argparse

from ._output import EXIT_ERROR, byte_progress, print_json
from ._store_common import add_store_options, say

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repair", action="store_true", help="fix what is found")
    parser.add_argument(
        "--deep", action="store_true", help="re-hash every file, not only the changed ones"
    )
    add_store_options(parser, json_help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    from ..errors import NotAStoreError, StoreCorruptError
    from ..store import Store
    from ..store._fsck import rebuild_database

    moved_to = None
    try:
        store = Store(args.store, auto_cleanup=False)
    except StoreCorruptError as error:
        if not args.repair or isinstance(error, NotAStoreError):
            raise
        from .._paths import store_root

        moved_to = rebuild_database(store_root(args.store).absolute())
        store = Store(args.store, auto_cleanup=False)
    with store, byte_progress("checking", enabled=not args.json) as progress:
        report = store.fsck(
            repair=args.repair,
            deep=args.deep,
            on_progress=lambda _model, done, total: progress(done, total),
        )
    if args.json:
        data = report.to_dict()
        data["damaged_database_moved_to"] = str(moved_to) if moved_to else None
        print_json(data)
        return 0 if report.ok else EXIT_ERROR
    if moved_to is not None:
        say(f"the damaged database was moved to {moved_to}; the store was rebuilt")
    say(
        f"checked {report.models_checked} models, {report.files_checked} files; "
        f"database integrity: {report.integrity}",
    )
    for issue in report.issues:
        where = issue.model_id or issue.path or ""
        line = f"  {'note: ' if issue.note else ''}{issue.kind}: {where}: {issue.detail}"
        if issue.action:
            line += f" -> {issue.action}"
        say(line)
    if report.ok:
        say(
            "repaired" if report.repaired and report.issues else "the store is consistent",
        )
        return 0
    if not args.repair:
        say("run `iris-models fsck --repair` to fix these")
    return EXIT_ERROR
