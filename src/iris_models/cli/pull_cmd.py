"""Download catalog models into the store (`pull`), verified as the bytes land, and list the
downloads under way or paused (`downloads`). Ctrl-C (or SIGTERM) pauses cleanly: run the
same command again and it resumes where it stopped. With --json, `pull` prints one JSON
event per line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._output import EXIT_ERROR, EXIT_INTERRUPTED, err_console, format_bytes, print_json
from ._store_common import add_store_options, format_ago, say

if TYPE_CHECKING:
    from ..download import DownloadEvent
    from ..registry import Registry

__all__ = ["configure_downloads", "configure_pull", "run_downloads", "run_pull"]

# Signal handlers need the main thread and a Unix event loop; without them Ctrl-C still works,
# as a KeyboardInterrupt that cancels the pull (which pauses it).
_NO_SIGNAL_HANDLERS = (NotImplementedError, RuntimeError, ValueError)


def configure_pull(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_ids", nargs="+", metavar="ID", help="catalog model ids")
    parser.add_argument(
        "--connections",
        type=_count(1, 64),
        metavar="N",
        help="connections per file (default: adapt, one while fast, more while each is slow)",
    )
    parser.add_argument(
        "--limit-rate",
        type=_rate,
        metavar="RATE",
        help="cap the total download speed: bytes per second, or 500K, 10M, 1G",
    )
    parser.add_argument(
        "--mirror",
        dest="mirrors",
        action="append",
        default=[],
        metavar="URL",
        help="try this URL before the catalog's (repeatable, tried in order; one model of one "
        "file)",
    )
    parser.add_argument(
        "--max-concurrent",
        type=_count(1, 16),
        default=2,
        metavar="N",
        help="models downloaded at once (default: 2)",
    )
    parser.add_argument(
        "--allow-unverified",
        action="store_true",
        help="keep a file that neither the catalog nor the server gives a digest for",
    )
    add_store_options(parser, json_help="print one JSON event per line instead of progress bars")


def _count(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = low - 1
        if not low <= value <= high:
            message = f"expected a whole number from {low} to {high}, not {text!r}"
            raise argparse.ArgumentTypeError(message)
        return value

    return parse


def _rate(text: str) -> int:
    from ..download._rate import parse_rate

    try:
        return parse_rate(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def configure_downloads(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--resume",
        action="store_true",
        help="run every queued and paused download now (as `pull` of each would)",
    )
    add_store_options(parser, json_help="print the downloads as JSON")


def _registry(args: argparse.Namespace) -> Registry:
    from ..registry import Registry

    return Registry(args.store, catalogs=getattr(args, "catalogs", None) or ())


def run_pull(args: argparse.Namespace) -> int:
    with _registry(args) as registry:
        for model_id in args.model_ids:
            model = registry.get(model_id)  # an unknown id fails now, with a did-you-mean hint
            if args.mirrors and (len(args.model_ids) > 1 or len(model.files) > 1):
                message = (
                    "iris-models: error: --mirror names one file's URL: pull one model of one "
                    "file with it (the catalog lists each file's own mirrors)"
                )
                err_console.print(message, markup=False, soft_wrap=True)
                return EXIT_ERROR
        _configure_downloader(registry, args.max_concurrent, args.limit_rate)
        return asyncio.run(_pull_all(registry, args, args.model_ids))


def run_downloads(args: argparse.Namespace) -> int:
    with _registry(args) as registry:
        if args.resume:
            waiting = [row["id"] for row in _download_rows(registry) if row["resumable"]]
            if not waiting:
                say("nothing to resume")
                return 0
            _configure_downloader(registry, 2, None)
            return asyncio.run(_pull_all(registry, args, waiting))
        rows = _download_rows(registry)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        say("no downloads under way or paused")
        return 0
    _print_downloads(rows)
    return 0


def _configure_downloader(registry: Registry, max_concurrent: int, rate: int | None) -> None:
    import dataclasses

    from ..download import TokenBucket

    downloader = registry.downloader
    downloader.max_concurrent = max_concurrent
    if rate is not None:
        downloader.options = dataclasses.replace(downloader.options, rate_limit=TokenBucket(rate))


async def _pull_all(registry: Registry, args: argparse.Namespace, model_ids: list[str]) -> int:
    from ..errors import DownloadPaused, IrisModelsError

    downloader = registry.downloader
    loop = asyncio.get_running_loop()
    interrupted = False

    def on_interrupt() -> None:
        nonlocal interrupted
        if interrupted:  # a second Ctrl-C: stop waiting for a clean pause
            raise KeyboardInterrupt
        interrupted = True
        err_console.print("pausing (Ctrl-C again to stop at once)...", markup=False, soft_wrap=True)
        downloader.pause_all()

    with contextlib.suppress(*_NO_SIGNAL_HANDLERS):
        loop.add_signal_handler(signal.SIGINT, on_interrupt)
        loop.add_signal_handler(signal.SIGTERM, on_interrupt)  # a service stop: pause too
    json_mode = getattr(args, "json", False)
    view = None if json_mode else _ProgressView()
    emit: Callable[[DownloadEvent], None] = _json_event if view is None else view.update
    try:
        if view is not None:
            view.start()
        outcomes = await asyncio.gather(
            *(
                registry.pull(
                    model_id,
                    connections=getattr(args, "connections", None),
                    mirrors=getattr(args, "mirrors", ()),
                    allow_unverified=getattr(args, "allow_unverified", False),
                    on_event=emit,
                )
                for model_id in model_ids
            ),
            return_exceptions=True,
        )
    finally:
        if view is not None:
            view.stop()
        with contextlib.suppress(*_NO_SIGNAL_HANDLERS):
            loop.remove_signal_handler(signal.SIGINT)
            loop.remove_signal_handler(signal.SIGTERM)
    status = 0
    for model_id, outcome in zip(model_ids, outcomes, strict=True):
        if isinstance(outcome, DownloadPaused):
            status = max(status, EXIT_INTERRUPTED if interrupted else EXIT_ERROR)
            if not json_mode:
                what = "cancelled" if outcome.reason == "cancelled" else "paused"
                say(f"{model_id}: {what}; run `iris-models pull {model_id}` again to resume")
        elif isinstance(outcome, (IrisModelsError, OSError)):
            status = EXIT_ERROR
            message = f"iris-models: error: {model_id}: {outcome}"
            err_console.print(message, markup=False, soft_wrap=True)
        elif isinstance(outcome, BaseException):
            raise outcome
        elif not json_mode:
            say(f"{outcome.id}: ready ({format_bytes(outcome.size_bytes)}) at {outcome.path}")
    return status


_last_json_progress: dict[str, float] = {}


def _json_event(event: DownloadEvent) -> None:
    if event.kind == "progress":  # at most one a second per model: a log, not a flood
        now = time.monotonic()
        if now - _last_json_progress.get(event.model_id, 0.0) < 1.0:
            return
        _last_json_progress[event.model_id] = now
    import json

    sys.stdout.write(json.dumps(event.to_dict(), default=str) + "\n")
    sys.stdout.flush()


class _ProgressView:
    """Rich progress bars on stderr: one per model (bytes, speed, time left) and a total."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            TextColumn("{task.fields[note]}"),
            console=err_console,
            disable=not err_console.is_terminal,
        )
        self._tasks: dict[str, Any] = {}
        self._totals: dict[str, tuple[int, int | None]] = {}
        self._total_task: Any = None

    def start(self) -> None:
        self._progress.start()

    def stop(self) -> None:
        self._progress.stop()

    def _task(self, model_id: str) -> Any:
        if model_id not in self._tasks:
            self._tasks[model_id] = self._progress.add_task(model_id, total=None, note="queued")
        return self._tasks[model_id]

    def update(self, event: DownloadEvent) -> None:
        from ..download import _events as ev

        task = self._task(event.model_id)
        if isinstance(event, ev.Progress):
            self._progress.update(
                task, completed=event.bytes_done, total=event.total_bytes, note=""
            )
            self._totals[event.model_id] = (event.bytes_done, event.total_bytes)
            self._update_total()
        elif isinstance(event, ev.Started):
            self._progress.update(task, total=event.total_bytes, note="")
        elif isinstance(event, ev.Queued):
            self._progress.update(task, note=event.reason or "queued")
        elif isinstance(event, ev.Retrying):
            note = f"retry {event.attempt} in {event.delay_s:.0f} s: {event.reason[:60]}"
            self._progress.update(task, note=note)
        elif isinstance(event, ev.Verifying):
            self._progress.update(task, note="installing")
        elif isinstance(event, ev.Completed):
            self._progress.update(
                task, completed=event.size_bytes, total=event.size_bytes, note="ready"
            )
        elif isinstance(event, (ev.Paused, ev.Cancelled, ev.Failed)):
            self._progress.update(task, note=event.kind)

    def _update_total(self) -> None:
        if len(self._tasks) < 2:
            return
        if self._total_task is None:
            self._total_task = self._progress.add_task("total", total=None, note="")
        done = sum(value[0] for value in self._totals.values())
        totals = [value[1] for value in self._totals.values()]
        total = None if any(value is None for value in totals) else sum(t or 0 for t in totals)
        self._progress.update(self._total_task, completed=done, total=total)


def _download_rows(registry: Registry) -> list[dict[str, Any]]:
    return [pending.to_dict() for pending in registry.pending_downloads()]


def _print_downloads(rows: list[dict[str, Any]]) -> None:
    from rich.table import Table

    from ._output import out_console

    table = Table(box=None, pad_edge=False)
    for column in ("ID", "STATE", "DONE", "SIZE", "UPDATED", "NOTE"):
        table.add_column(column, justify="right" if column in ("DONE", "SIZE") else "left")
    for row in rows:
        total = row["total_bytes"]
        share = f" ({row['bytes_done'] / total:.0%})" if total else ""
        table.add_row(
            row["id"],
            row["state"],
            format_bytes(row["bytes_done"]) + share,
            format_bytes(total),
            format_ago(row["updated_at"]),
            (row["reason"] or "")[:60],
        )
    out_console.print(table)
