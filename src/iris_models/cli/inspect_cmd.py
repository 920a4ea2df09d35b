"""Show what a GGUF file holds: a summary of the model, its metadata, and with --tensors every
tensor record. Only the header is read, never the weights: for a URL (https://, hf://) only
the header's bytes are fetched, with growing range requests. --json prints one JSON document."""

from __future__ import annotations

import argparse
from importlib.resources import as_file, files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._output import format_bytes, out_console, print_json

if TYPE_CHECKING:
    from ..gguf import GGUFFile, GGUFSummary

__all__ = ["configure", "run"]

ARRAY_HEAD = 8  # array elements shown unless --full-arrays
TEXT_PREVIEW = 200  # characters of a long string shown in the terminal table


def configure(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "path",
        nargs="?",
        help="a GGUF file (any shard of a split model), or the URL of one "
        "(https://..., hf://owner/repo[@revision]/file.gguf)",
    )
    source.add_argument(
        "--sample",
        action="store_true",
        help="inspect the small synthetic GGUF file bundled with iris-models",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--tensors", action="store_true", help="list every tensor record")
    parser.add_argument("--key", metavar="KEY", help="print only this metadata key, in full")
    parser.add_argument(
        "--full-arrays",
        action="store_true",
        help=f"print arrays in full (default: the length and first {ARRAY_HEAD} elements)",
    )
    parser.add_argument(
        "--single-shard",
        action="store_true",
        help="open only the named shard of a split model, not all of its shards",
    )


def run(args: argparse.Namespace) -> int:
    from .. import gguf

    if args.sample:
        sample = files("iris_models").joinpath("data").joinpath("sample.gguf")
        with as_file(sample) as sample_path, gguf.open(sample_path) as model:
            return _report(model, args)
    if args.path.startswith(("https://", "http://", "hf://")):
        from ..recommend import fetch_header

        header = fetch_header(args.path)
        with header.model as model:
            status = _report(model, args)
        if not args.json and args.key is None:
            out_console.print(
                f"fetched {format_bytes(header.bytes_fetched)} of "
                f"{format_bytes(header.file_size)} in {header.requests} range requests",
                markup=False,
            )
        return status
    with gguf.open(Path(args.path), all_shards=not args.single_shard) as model:
        return _report(model, args)


def _report(model: GGUFFile, args: argparse.Namespace) -> int:
    if args.key is not None:
        return _report_key(model, args.key, as_json=args.json)
    if args.json:
        print_json(_document(model, tensors=args.tensors, full_arrays=args.full_arrays))
    else:
        _print_report(model, tensors=args.tensors, full_arrays=args.full_arrays)
    return 0


def _report_key(model: GGUFFile, key: str, *, as_json: bool) -> int:
    from ..errors import IrisModelsError

    if key not in model.fields:
        message = f"{model.path}: no metadata key {key!r} (this file has {len(model.fields)} keys)"
        raise IrisModelsError(message)
    value = _jsonable(model.fields[key].value, full=True)
    if as_json:
        print_json({key: value})
    elif isinstance(value, list):
        for item in value:
            out_console.print(_display_text(item), markup=False, soft_wrap=True)
    else:
        out_console.print(_display_text(value), markup=False, soft_wrap=True)
    return 0


# -- JSON ------------------------------------------------------------------------------------


def _document(model: GGUFFile, *, tensors: bool, full_arrays: bool) -> dict[str, Any]:
    summary = model.summary()
    document: dict[str, Any] = {
        "path": str(model.path) if model.path is not None else None,
        "version": model.version,
        "endianness": model.endianness,
        "alignment": model.alignment,
        "data_offset": model.data_offset,
        "file_size": model.file_size,
        "summary": summary.to_dict(),
        "metadata": {
            key: _json_field(field.element_type, field.value, full_arrays)
            for key, field in model.fields.items()
        },
        "warnings": list(model.warnings),
    }
    if len(model.shards) > 1:
        document["shards"] = [
            {
                "path": str(shard.path),
                "data_offset": shard.data_offset,
                "file_size": shard.file_size,
                "n_tensors": shard.n_tensors,
            }
            for shard in model.shards
        ]
    if tensors:
        document["tensors"] = [
            {
                "name": tensor.name,
                "type": tensor.type,
                "shape": list(tensor.shape),
                "offset": tensor.offset,
                "nbytes": tensor.nbytes,
                "shard": tensor.shard,
            }
            for tensor in model.tensors
        ]
    return document


def _json_field(element_type: Any, value: Any, full: bool) -> Any:
    if element_type is None:
        return _jsonable(value, full=True)
    length = len(value)
    entry: dict[str, Any] = {"type": "ARRAY", "element_type": element_type.name, "length": length}
    if full or length <= ARRAY_HEAD:
        entry["items"] = _jsonable(value, full=True)
    else:
        entry["head"] = _jsonable(value[:ARRAY_HEAD], full=True)
    return entry


def _jsonable(value: Any, *, full: bool) -> Any:
    """Metadata values as JSON data: arrays become lists, nested arrays nested lists."""
    if isinstance(value, (str, bytes, bool, int, float)) or value is None:
        return value
    if hasattr(value, "tolist"):  # numpy arrays and StringArray
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_jsonable(item, full=full) for item in value]
    return str(value)


# -- terminal --------------------------------------------------------------------------------


def _print_report(model: GGUFFile, *, tensors: bool, full_arrays: bool) -> None:
    from rich.table import Table

    summary = model.summary()
    title = model.path.name if model.path is not None else "<buffer>"
    out_console.print(
        f"[bold]{title}[/bold]  GGUF v{model.version}, {model.endianness}-endian, "
        f"{format_bytes(model.file_size)}"
        + (f", {len(model.shards)} shards" if len(model.shards) > 1 else "")
    )
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    for label, text in _summary_lines(summary):
        facts.add_row(label, text)
    out_console.print(facts)

    meta = Table(title="Metadata", title_justify="left", show_lines=False)
    meta.add_column("key", overflow="fold")
    meta.add_column("type")
    meta.add_column("value", overflow="fold")
    for key, field in model.fields.items():
        type_text = field.type.name
        if field.element_type is not None:
            type_text = f"{field.element_type.name}[{field.count:,}]"
        meta.add_row(key, type_text, _display_value(field.value, full_arrays))
    out_console.print(meta)

    if tensors:
        table = Table(title="Tensors", title_justify="left")
        for column, justify in (
            ("name", "left"),
            ("type", "left"),
            ("shape", "left"),
            ("bytes", "right"),
            ("offset", "right"),
        ):
            table.add_column(column, justify=justify)  # type: ignore[arg-type]
        multi = len(model.shards) > 1
        if multi:
            table.add_column("shard", justify="right")
        for tensor in model.tensors:
            row = [
                tensor.name,
                tensor.type,
                " x ".join(str(d) for d in tensor.shape),
                f"{tensor.nbytes:,}" if tensor.nbytes is not None else "unknown",
                f"{tensor.offset:,}",
            ]
            table.add_row(*row, *([str(tensor.shard + 1)] if multi else []))
        out_console.print(table)

    for warning in model.warnings:
        out_console.print(f"[yellow]warning:[/yellow] {_escape(warning)}")


def _summary_lines(summary: GGUFSummary) -> list[tuple[str, str]]:
    lines: list[tuple[str, str]] = []
    name = summary.name or "(unnamed)"
    details = ", ".join(v for v in (summary.architecture, summary.size_label) if v)
    lines.append(("Model", f"{_escape(name)}" + (f" ({_escape(details)})" if details else "")))
    lines.append(
        ("Parameters", f"{_count_label(summary.n_parameters)} in {summary.n_tensors:,} tensors")
    )
    mix = ", ".join(f"{t} {share:.1%}" for t, share in list(summary.type_fractions().items())[:5])
    if summary.quantization or mix:
        label = summary.quantization or "not stated"
        if summary.file_type is not None:
            label += f" (file type {summary.file_type})"
        lines.append(("Quantization", label + (f"; by bytes: {mix}" if mix else "")))
    if summary.context_length is not None:
        lines.append(("Context", f"{summary.context_length:,} tokens"))
    if summary.block_count is not None:
        layer = f"{summary.block_count} block{'s' if summary.block_count != 1 else ''}"
        if summary.embedding_length is not None:
            layer += f", embedding {summary.embedding_length:,}"
        if summary.feed_forward_length is not None:
            layer += f", feed-forward {_per_layer_text(summary.feed_forward_length)}"
        lines.append(("Layers", layer))
    if summary.head_count is not None:
        attention = f"{_per_layer_text(summary.head_count)} heads"
        if summary.head_count_kv is not None:
            attention += f", {_per_layer_text(summary.head_count_kv)} KV heads"
        if summary.key_length is not None:
            attention += f", head size {summary.key_length}/{summary.value_length}"
        if summary.sliding_window is not None:
            attention += f", sliding window {summary.sliding_window:,}"
        lines.append(("Attention", attention))
    if summary.expert_count:
        lines.append(("Experts", f"{summary.expert_used_count} of {summary.expert_count} used"))
    if summary.vocab_size is not None:
        tokenizer = f" ({summary.tokenizer_model} tokenizer)" if summary.tokenizer_model else ""
        lines.append(("Vocabulary", f"{summary.vocab_size:,} tokens{tokenizer}"))
    header = f"{format_bytes(summary.header_size)}"
    if summary.file_size:
        header += f" ({summary.header_size / summary.file_size:.1%} of the file)"
    lines.append(("Header", header + f"; tensor data {format_bytes(summary.data_size)}"))
    if summary.split is not None:
        lines.append(("Split", f"{summary.split.shard_count} shards"))
    return lines


def _per_layer_text(value: int | tuple[int, ...]) -> str:
    if isinstance(value, int):
        return f"{value:,}"
    distinct = sorted(set(value))
    return f"{'/'.join(str(v) for v in distinct)} (per layer, {len(value)} layers)"


def _count_label(count: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("K", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return str(count)


def _display_value(value: Any, full: bool) -> str:
    if isinstance(value, str):
        text = _display_text(value)
        return _escape(text if full or len(text) <= TEXT_PREVIEW else text[:TEXT_PREVIEW] + "...")
    if isinstance(value, (bool, int, float)):
        return str(value)
    length = len(value)
    shown = value if full or length <= ARRAY_HEAD else value[:ARRAY_HEAD]
    items = ", ".join(_display_text(repr(_jsonable(item, full=True))) for item in shown)
    more = "" if full or length <= ARRAY_HEAD else f", ... ({length:,} in all)"
    return _escape(f"[{items}{more}]")


def _display_text(value: Any) -> str:
    """Text safe to print: undecodable bytes (lone surrogates) shown as \\xNN."""
    text = str(value)
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
