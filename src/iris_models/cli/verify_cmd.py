"""Check files against expected digests or piece manifests. With a manifest (--manifest, or a
PATH.manifest.json beside the file) the bad byte ranges are named; --pieces records such a
manifest in the same pass as the whole-file digest. Exit status 1 if any file fails."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._output import (
    EXIT_ERROR,
    byte_progress,
    describe_os_error,
    format_bytes,
    out_console,
    print_json,
)

if TYPE_CHECKING:
    from ..verify import Manifest, VerifyResult

__all__ = ["configure", "run"]

MANIFEST_SUFFIX = ".manifest.json"
_SIZE = re.compile(r"(\d+)\s*([kmg]i?b?)?", re.IGNORECASE)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files to verify")
    parser.add_argument(
        "--expect",
        action="append",
        default=[],
        metavar="DIGEST",
        help="expected digest (sha256:<hex>, xxh128:<hex>, blake3:<hex> or bare hex); "
        "give one per PATH, in order",
    )
    parser.add_argument(
        "--manifest",
        action="append",
        default=[],
        type=Path,
        metavar="FILE",
        help=f"piece manifest to check against, one per PATH (default: PATH{MANIFEST_SUFFIX})",
    )
    parser.add_argument(
        "--pieces",
        action="store_true",
        help=f"also hash fixed-size pieces and write PATH{MANIFEST_SUFFIX}, so a later "
        "verify can name bad byte ranges",
    )
    parser.add_argument(
        "--piece-size", type=_parse_size, default=None, help="piece size, e.g. 64M (default)"
    )
    parser.add_argument("--workers", type=int, default=None, help="threads (default: cores)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def run(args: argparse.Namespace) -> int:
    from ..verify import Digest

    paths: list[Path] = args.paths
    expects = [Digest.parse(text) for text in args.expect]
    for option, given in (("--expect", expects), ("--manifest", args.manifest)):
        if given and len(given) != len(paths):
            message = (
                f"iris-models verify: error: {option} was given {len(given)} times "
                f"for {len(paths)} paths"
            )
            raise SystemExit(message)
    reports = []
    with byte_progress("verifying", enabled=not args.json) as on_progress:
        for index, path in enumerate(paths):
            expected = expects[index] if expects else None
            manifest_path = args.manifest[index] if args.manifest else None
            reports.append(_check(path, expected, manifest_path, args, on_progress))
    if args.json:
        print_json(reports)
    else:
        for report in reports:
            _print(report)
    return 0 if all(report["ok"] for report in reports) else EXIT_ERROR


def _check(
    path: Path,
    expected: Any,
    manifest_path: Path | None,
    args: argparse.Namespace,
    on_progress: Any,
) -> dict[str, Any]:
    from .. import verify as v
    from ..errors import IrisModelsError

    try:
        if args.pieces:
            return _record_pieces(path, expected, args, on_progress)
        sidecar = path.with_name(path.name + MANIFEST_SUFFIX)
        if manifest_path is None and sidecar.is_file():
            manifest_path = sidecar
        manifest = v.Manifest.load(manifest_path) if manifest_path is not None else None
        if expected is None and manifest is None:
            message = (
                f"{path}: nothing to verify against: pass --expect DIGEST or --manifest FILE, "
                "or --pieces to record a manifest"
            )
            return _report(path, ok=False, error=message)
        result = v.verify(
            path, expected, manifest=manifest, workers=args.workers, on_progress=on_progress
        )
        return _report_result(result, manifest_path)
    except (OSError, IrisModelsError) as error:
        text = describe_os_error(error) if isinstance(error, OSError) else str(error)
        return _report(path, ok=False, error=text)


def _record_pieces(
    path: Path, expected: Any, args: argparse.Namespace, on_progress: Any
) -> dict[str, Any]:
    from .. import verify as v

    kwargs = {"piece_size": args.piece_size} if args.piece_size else {}
    manifest: Manifest = v.manifest(path, workers=args.workers, on_progress=on_progress, **kwargs)
    target = path.with_name(path.name + MANIFEST_SUFFIX)
    ok = expected is None or expected == manifest.sha256
    if ok:  # never record a manifest for a file that failed its expected digest
        manifest.save(target)
    return _report(
        path,
        ok=ok,
        expected=str(expected) if expected is not None else None,
        actual=str(manifest.sha256),
        size=manifest.size,
        pieces=len(manifest.pieces),
        piece_size=manifest.piece_size,
        manifest=str(target) if ok else None,
    )


def _report_result(result: VerifyResult, manifest_path: Path | None) -> dict[str, Any]:
    return _report(
        result.path,
        ok=result.ok,
        expected=str(result.expected) if result.expected else None,
        actual=str(result.actual) if result.actual else None,
        size=result.size,
        bad_ranges=[list(r) for r in result.bad_ranges],
        manifest=str(manifest_path) if manifest_path is not None else None,
        error=result.error,
    )


def _report(path: Path, *, ok: bool, **fields: Any) -> dict[str, Any]:
    return {"path": str(path), "ok": ok, **{k: v for k, v in fields.items() if v is not None}}


def _print(report: dict[str, Any]) -> None:
    path = _escape(report["path"])
    if "error" in report:
        # Library errors already begin with the path.
        line = f"[red]ERROR[/red]     {_escape(report['error'])}"
    elif report.get("bad_ranges"):
        ranges = report["bad_ranges"]
        spans = ", ".join(f"[{a:,}, {b:,})" for a, b in ranges)
        noun = "piece" if len(ranges) == 1 else "pieces"
        bad_bytes = format_bytes(sum(b - a for a, b in ranges))
        line = (
            f"[red]BAD[/red]       {path}: {len(ranges)} bad {noun} ({bad_bytes}) at bytes {spans}"
        )
    elif not report["ok"]:
        line = (
            f"[red]MISMATCH[/red]  {path}: expected {report.get('expected')}, "
            f"got {report.get('actual')}"
        )
    elif "pieces" in report:
        line = (
            f"[green]OK[/green]        {path}  {report['actual']}  ({report['pieces']} pieces "
            f"recorded in {_escape(report['manifest'])})"
        )
    else:
        line = f"[green]OK[/green]        {path}  {report.get('actual', '')}"
    # One line per file, however wide: scripts and eyes both scan by line.
    out_console.print(line, soft_wrap=True)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def _parse_size(text: str) -> int:
    """Bytes from '65536', '64K', '64M', '1G' (binary units)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        message = f"not a size: {text!r} (use bytes, or K, M, G)"
        raise argparse.ArgumentTypeError(message)
    scale = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[(match[2] or "")[:1].lower()]
    return int(match[1]) * scale
