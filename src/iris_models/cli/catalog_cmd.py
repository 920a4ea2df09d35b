"""Browse and check model catalogs: `list`, `search`, `show`, `catalog validate FILE` and
`catalog refresh`. The bundled catalog is merged with IRIS_MODELS_CATALOG and every global
--catalog FILE|URL, later sources replacing earlier entries with the same id."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from ._output import err_console, format_bytes, print_json
from ._store_common import say

if TYPE_CHECKING:
    from ..catalog import Catalog, ModelDescriptor

__all__ = [
    "configure_catalog",
    "configure_list",
    "configure_search",
    "configure_show",
    "load_for",
    "run_catalog",
    "run_list",
    "run_search",
    "run_show",
]

TYPES = ("llm", "embedding", "safety")


def load_for(args: argparse.Namespace, *, refresh: bool = False) -> Catalog:
    """The merged catalog for a command, its warnings printed to stderr."""
    from ..catalog import load_catalog

    catalog = load_catalog(getattr(args, "catalogs", None) or (), refresh=refresh)
    if not getattr(args, "json", False):
        for warning in catalog.warnings:
            err_console.print(f"iris-models: warning: {warning}", markup=False, soft_wrap=True)
    return catalog


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", choices=TYPES, help="only models of this type")
    parser.add_argument("--capability", help="only models with this capability (chat, code, ...)")
    parser.add_argument("--json", action="store_true", help="print the models as JSON")


def configure_list(parser: argparse.ArgumentParser) -> None:
    _add_filters(parser)


def configure_search(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", nargs="+", help="words that must all appear (case-insensitive)")
    _add_filters(parser)


def run_list(args: argparse.Namespace) -> int:
    catalog = load_for(args)
    return _print_models(catalog.models(args.type, capability=args.capability), args)


def run_search(args: argparse.Namespace) -> int:
    catalog = load_for(args)
    query = " ".join(args.query)
    models = catalog.models(args.type, capability=args.capability, query=query)
    if not models and not args.json:
        say(f"No catalog model matches {query!r}.")
        return 1
    return _print_models(models, args)


def _print_models(models: list[ModelDescriptor], args: argparse.Namespace) -> int:
    from rich.table import Table

    if args.json:
        print_json([descriptor_to_dict(model) for model in models])
        return 0
    table = Table(box=None, pad_edge=False)
    for column in ("ID", "TYPE", "PARAMS", "QUANT", "SIZE", "CONTEXT", "VERIFIED"):
        right = column in ("PARAMS", "SIZE", "CONTEXT")
        table.add_column(column, justify="right" if right else "left", no_wrap=column == "ID")
    for model in models:
        size = format_bytes(model.total_size_bytes)
        table.add_row(
            model.id,
            model.type.value,
            model.parameter_count or "-",
            model.quantization or "-",
            f"~{size}" if model.file_size_approximate else size,
            str(model.context_size or model.max_sequence_length or "-"),
            "yes" if model.verified else "no",
        )
    say(table)
    say(f"{len(models)} models")
    return 0


def descriptor_to_dict(model: ModelDescriptor) -> dict[str, Any]:
    """A catalog model as plain JSON data (snake_case, bytes as integers)."""
    from dataclasses import asdict

    data = asdict(model)
    data["type"] = model.type.value
    data["parameters"] = model.parameters
    data["total_size_bytes"] = model.total_size_bytes
    data["shape"] = model.shape.to_dict() if model.shape is not None else None
    return data


def configure_show(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model_id", metavar="ID", help="a catalog model id")
    parser.add_argument("--json", action="store_true", help="print the entry as JSON")


def run_show(args: argparse.Namespace) -> int:
    model = load_for(args).get(args.model_id)
    if args.json:
        print_json(descriptor_to_dict(model))
        return 0
    requirements = model.requirements
    lines = [
        f"{model.name} ({model.id})",
        model.description,
        "",
        f"type          {model.type.value}",
        f"parameters    {model.parameter_count or '-'}",
        f"quantization  {model.quantization or '-'}",
        f"architecture  {model.architecture or '-'}",
        f"context       {model.context_size or model.max_sequence_length or '-'}",
        f"capabilities  {', '.join(model.capabilities) or '-'}",
        f"license       {model.license or '-'}",
        f"verified      {'yes' if model.verified else 'no: URL, size and digest unconfirmed'}",
        f"source        {model.source}",
        f"min RAM       {format_bytes(requirements.min_ram_bytes)}"
        + (
            f" (recommended {format_bytes(requirements.recommended_ram_bytes)})"
            if requirements.recommended_ram_bytes
            else ""
        ),
        f"backends      {', '.join(requirements.supported_backends) or 'any'}",
        f"device class  {', '.join(requirements.device_classes) or 'any'}",
    ]
    for spec in model.files:
        size = format_bytes(spec.size_bytes)
        lines += [
            "",
            f"file          {spec.name} ({spec.role}, {'~' if spec.size_approximate else ''}{size})",
            f"  url         {spec.url}",
            f"  sha256      {spec.sha256 or 'unknown (the hub-advertised digest will be used)'}",
        ]
        lines += [f"  mirror      {mirror}" for mirror in spec.mirrors]
    if model.shape is not None:
        shape = model.shape
        facts = (
            f"header facts  {shape.block_count} layers, {shape.embedding_length} wide, "
            f"{shape.head_count} heads ({max(shape.head_count_kv)} K/V), vocabulary "
            f"{shape.vocab_size or '-'}, sliding window {shape.sliding_window or 'none'}"
        )
        lines += ["", facts]
    if model.notes:
        lines += ["", model.notes]
    for line in lines:
        say(line)
    return 0


def configure_catalog(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    validate = actions.add_parser("validate", help="check catalog files against the schema")
    validate.add_argument("files", nargs="+", metavar="FILE", help="catalog JSON files")
    validate.add_argument(
        "--allow-http", action="store_true", help="accept http:// and file:// model URLs"
    )
    validate.add_argument("--json", action="store_true", help="print the results as JSON")
    refresh = actions.add_parser("refresh", help="fetch remote catalogs again now")
    refresh.add_argument("--json", action="store_true", help="print what each source gave")


def run_catalog(args: argparse.Namespace) -> int:
    if args.action == "validate":
        return _validate(args)
    return _refresh(args)


def _validate(args: argparse.Namespace) -> int:
    from ..catalog import read_catalog
    from ..errors import CatalogError

    results = []
    for path in args.files:
        try:
            models, _ = read_catalog(path, allow_http=args.allow_http or None)
            results.append({"file": path, "valid": True, "models": len(models), "error": None})
        except CatalogError as error:
            results.append(
                {
                    "file": path,
                    "valid": False,
                    "models": 0,
                    "error": str(error),
                    "json_path": error.json_path,
                    "rule": error.rule,
                }
            )
    if args.json:
        print_json(results)
    else:
        for result in results:
            if result["valid"]:
                say(f"{result['file']}: valid, {result['models']} models")
            else:
                err_console.print(f"iris-models: {result['error']}", markup=False, soft_wrap=True)
    return 0 if all(result["valid"] for result in results) else 1


def _refresh(args: argparse.Namespace) -> int:
    catalog = load_for(args, refresh=True)
    reports = [
        {
            "source": report.source,
            "models": report.models,
            "outcome": report.remote.outcome if report.remote else "file",
            "detail": report.remote.detail if report.remote else "",
        }
        for report in catalog.sources
    ]
    if args.json:
        print_json({"models": len(catalog), "sources": reports})
    else:
        for report in reports:
            detail = f": {report['detail']}" if report["detail"] else ""
            say(f"{report['source']}: {report['outcome']}, {report['models']} models{detail}")
        say(f"{len(catalog)} models in the merged catalog")
        if not any(report.remote for report in catalog.sources):
            say("No remote catalog configured: add URLs with --catalog or IRIS_MODELS_CATALOG.")
    failed = any(report.remote and not report.remote.ok for report in catalog.sources)
    return 1 if failed else 0
