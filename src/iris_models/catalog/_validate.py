"""Checks a catalog document: the JSON Schema shipped beside it (compiled once with
fastjsonschema), then what a schema cannot say: unique ids, safe file names, HTTPS URLs,
per-layer lists as long as the model has layers."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from ..errors import CatalogError

__all__ = ["SCHEMA_NAME", "check_document", "load_schema", "parse_json"]

SCHEMA_NAME = "models.schema.json"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def load_schema() -> dict[str, Any]:
    text = (resources.files(__package__) / SCHEMA_NAME).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _compiled_schema() -> Callable[[Any], Any]:
    import fastjsonschema  # compiled to Python once per process, on first use

    schema = load_schema()
    validator: Callable[[Any], Any] = fastjsonschema.compile(
        _inline_refs(schema, schema["definitions"])
    )
    return validator


def _inline_refs(node: Any, definitions: dict[str, Any]) -> Any:
    """The schema with every ``$ref`` but the model's replaced by its definition: the code
    fastjsonschema generates for a ``$ref`` inside an array formats the item's error name
    on every call, which made validating 10,000 models three times slower."""
    if isinstance(node, dict):
        reference = node.get("$ref", "")
        name = reference.removeprefix("#/definitions/")
        if reference.startswith("#/definitions/") and name != "model":
            return _inline_refs(definitions[name], definitions)
        return {key: _inline_refs(value, definitions) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline_refs(item, definitions) for item in node]
    return node


def parse_json(text: str | bytes, source: str) -> Any:
    """Strict JSON: UTF-8 only, no NaN or Infinity, and bad depth or number length refused
    with a CatalogError like any other bad input."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as error:
            message = f"{source}: not UTF-8 text ({error.reason} at byte {error.start})"
            raise CatalogError(message, source=source, rule="json") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        message = (
            f"{source}: not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}"
        )
        raise CatalogError(message, source=source, rule="json") from None
    except _NotJSON as error:
        message = f"{source}: not valid JSON: {error.args[0]} is not a JSON number"
        raise CatalogError(message, source=source, rule="json") from None
    except RecursionError:
        message = f"{source}: not accepted: the JSON is nested too deeply"
        raise CatalogError(message, source=source, rule="json") from None
    except ValueError as error:  # an integer past Python's digit limit
        message = f"{source}: not accepted: {error}"
        raise CatalogError(message, source=source, rule="json") from None


class _NotJSON(Exception):
    pass


def _refuse_constant(name: str) -> Any:
    raise _NotJSON(name)  # NaN and Infinity: Python's json accepts them, JSON does not


def check_document(document: Any, source: str, *, allow_http: bool = False) -> None:
    """Raises CatalogError naming the JSON path and the rule for the first problem found."""
    import fastjsonschema

    try:
        _compiled_schema()(document)
    except fastjsonschema.JsonSchemaValueException as error:
        path = str(error.name).removeprefix("data").lstrip(".")
        what = str(error.message).removeprefix(str(error.name)).strip()
        message = f"{source}: {path or 'the document'}: {what} (schema rule: {error.rule})"
        raise CatalogError(message, source=source, json_path=path, rule=error.rule) from None
    _check_semantics(document, source, allow_http=allow_http)


def _fail(source: str, path: str, what: str, rule: str) -> CatalogError:
    return CatalogError(f"{source}: {path}: {what}", source=source, json_path=path, rule=rule)


def _entries(document: Mapping[str, Any]) -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    for group, entries in document["models"].items():
        for index, entry in enumerate(entries):
            yield group, f"models.{group}[{index}]", entry


def _check_semantics(document: Mapping[str, Any], source: str, *, allow_http: bool) -> None:
    seen: dict[str, str] = {}
    for group, path, entry in _entries(document):
        if entry["type"] != group:
            what = f"a model of type {entry['type']!r} is listed under {group!r}"
            raise _fail(source, f"{path}.type", what, "type-matches-group")
        key = entry["id"].lower()  # the store compares ids without regard to case
        if key in seen:
            what = f"duplicate model id {entry['id']!r} (first at {seen[key]})"
            raise _fail(source, f"{path}.id", what, "unique-id")
        seen[key] = path
        _check_entry(entry, path, source, allow_http=allow_http)


def _check_entry(entry: Mapping[str, Any], path: str, source: str, *, allow_http: bool) -> None:
    files = entry.get("files")
    if files and "downloadUrl" in entry:
        what = "give either downloadUrl or files, not both"
        raise _fail(source, path, what, "one-file-list")
    if not files and "downloadUrl" not in entry:
        what = "a model needs a downloadUrl or a files list"
        raise _fail(source, path, what, "has-source")
    if files:
        names: set[str] = set()
        for index, item in enumerate(files):
            item_path = f"{path}.files[{index}]"
            _check_file_name(item["name"], f"{item_path}.name", source)
            if item["name"] in names:
                what = f"file name {item['name']!r} appears twice"
                raise _fail(source, f"{item_path}.name", what, "unique-file-name")
            names.add(item["name"])
            _check_urls(item, item_path, source, allow_http=allow_http)
    else:
        from ._model import url_file_name

        url = entry["downloadUrl"]
        _check_file_name(url_file_name(url), f"{path}.downloadUrl", source)
        _check_urls(entry, path, source, allow_http=allow_http, key="downloadUrl")
    requirements = entry["deviceRequirements"]
    recommended = requirements.get("recommendedRAM")
    if recommended is not None and recommended < requirements["minRAM"]:
        what = f"recommendedRAM {recommended} is below minRAM {requirements['minRAM']}"
        raise _fail(source, f"{path}.deviceRequirements", what, "recommended-at-least-min")
    block = entry.get("gguf")
    if block is not None:
        blocks = block["blockCount"]
        for name in ("headCountKv", "slidingWindowLayers"):
            value = block.get(name)
            if isinstance(value, list) and len(value) != blocks:
                what = f"{len(value)} entries for {blocks} layers (blockCount)"
                raise _fail(source, f"{path}.gguf.{name}", what, "one-per-layer")


def _check_file_name(name: str, path: str, source: str) -> None:
    """A file name must stay inside the model's folder on every OS."""
    bad = (
        not name
        or "/" in name
        or "\\" in name
        or name in (".", "..")
        or name.startswith(".")
        or _CONTROL.search(name) is not None
    )
    if bad:
        what = (
            f"file name {name!r} is not allowed: it must be a plain name with no path "
            "separator, no leading '.', no '..' and no control characters"
        )
        raise _fail(source, path, what, "safe-file-name")


def _check_urls(
    item: Mapping[str, Any], path: str, source: str, *, allow_http: bool, key: str = "url"
) -> None:
    for where, url in [(f"{path}.{key}", item[key])] + [
        (f"{path}.mirrors[{index}]", mirror) for index, mirror in enumerate(item.get("mirrors", ()))
    ]:
        parts = urlsplit(url)
        if parts.scheme in ("http", "file") and not allow_http:
            what = (
                f"{parts.scheme}:// URL {url!r} is not allowed: use https (or allow plain "
                "URLs with IRIS_MODELS_ALLOW_HTTP=1 / allow_http=True for a local mirror)"
            )
            raise _fail(source, where, what, "https-only")
        if parts.scheme != "file" and not parts.netloc:
            raise _fail(source, where, f"URL {url!r} names no host", "url-has-host")
        if parts.scheme == "hf" and parts.path.count("/") < 2:
            what = f"hf:// URL {url!r} must be hf://owner/repo[@revision]/path/to/file"
            raise _fail(source, where, what, "hf-url-form")
