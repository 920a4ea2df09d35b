"""What every command shares: consoles, JSON output, byte formatting, and turning expected
failures into one line on stderr with a non-zero exit status instead of a traceback."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console

from ..errors import IrisModelsError

__all__ = [
    "EXIT_ERROR",
    "byte_progress",
    "describe_os_error",
    "err_console",
    "format_bytes",
    "out_console",
    "print_json",
    "run_guarded",
]

ProgressCallback = Callable[[int, int], None]

EXIT_ERROR = 1
EXIT_INTERRUPTED = 130

out_console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def print_json(data: Any) -> None:
    """One JSON document on stdout. ASCII escapes keep strings that hold undecodable bytes
    (lone surrogates, see iris_models.gguf.decode_policy) printable on any terminal."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=True, default=_json_default) + "\n")


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy scalars and arrays
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


@contextmanager
def byte_progress(description: str, *, enabled: bool = True) -> Iterator[ProgressCallback]:
    """A progress bar with bytes, speed and ETA on stderr, fed by the returned callback.
    Shown only on a terminal (and never with --json), so pipes and logs stay clean."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    if not enabled or not err_console.is_terminal:
        yield lambda _done, _total: None
        return
    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console, transient=True) as bar:
        task = bar.add_task(description, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total or None)


def format_bytes(size: int | None) -> str:
    """Decimal units, as disks and download sizes are quoted."""
    if size is None:
        return "unknown"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def run_guarded(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Runs a command; bad input and OS errors become one line on stderr, not a traceback."""
    try:
        return handler(args)
    except BrokenPipeError:
        # `iris-models inspect ... | head` closed the pipe: not an error. Point stdout at
        # /dev/null so the interpreter's final flush does not fail again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    except (IrisModelsError, OSError) as error:
        message = describe_os_error(error) if isinstance(error, OSError) else str(error)
        err_console.print(f"iris-models: error: {message}", markup=False, soft_wrap=True)
        return EXIT_ERROR
    except KeyboardInterrupt:
        err_console.print("iris-models: interrupted", markup=False)
        return EXIT_INTERRUPTED


def describe_os_error(error: OSError) -> str:
    """``path: reason``, the one-line form every command prints for an OS error."""
    if error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error)
