"""Checks a catalog file: typed decoding against the format the JSON Schema describes (one C
pass, see _wire.py), then what a schema cannot say: unique ids and items, safe file names,
HTTPS URLs, per-layer lists as long as the model has layers. A refusal by the typed decoder
is explained by the JSON Schema itself (compiled with fastjsonschema), naming path and rule."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

import msgspec

from ..errors import CatalogError
from ._model import SAFE_FILE_NAME_RULE, is_safe_file_name, split_url, url_file_name
from ._schema import load_schema
from ._wire import (
    ID_PATTERN,
    PARAMETER_COUNT_PATTERN,
    QUANTIZATION_PATTERN,
    SHA256_PATTERN,
    URL_PATTERN,
    WireCatalog,
    WireFile,
    WireModel,
    decode_catalog,
)

__all__ = [
    "parse_json",
    "validated_catalog",
]

_AT = re.compile(r" - at `\$(.*)`$")


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
    on every call, three times the work when a refused 10,000-model catalog is explained."""
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
    import json

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


def validated_catalog(data: bytes, source: str, *, allow_http: bool = False) -> WireCatalog:
    """The catalog in `data`, checked; raises CatalogError naming the JSON path and the rule
    for the first problem found."""
    try:
        catalog = decode_catalog(data)
        _check_patterns(catalog)
    except (msgspec.DecodeError, ValueError) as error:  # ValueError: bytes that are not UTF-8
        raise _explain_refusal(data, source, error) from None
    _check_semantics(catalog, source, allow_http=allow_http)
    return catalog


class _Pattern:
    """One of the schema's patterns, run once over many values joined by newlines rather than
    once per value. No value the pattern accepts holds a newline, and the join is trusted only
    when it holds no other newline either (else "a\nb" would pass as two good values); when
    either test fails, each value is tried alone, with the schema's own semantics (re.search)."""

    def __init__(self, pattern: str, what: str):
        body = pattern.removeprefix("^").removesuffix("$")
        self.pattern = pattern
        self.what = what
        self._one = re.compile(pattern)
        self._many = re.compile(f"(?:{body})(?:\n(?:{body}))*")

    def check(self, values: list[str]) -> None:
        if not values:
            return
        joined = "\n".join(values)
        if joined.count("\n") == len(values) - 1 and self._many.fullmatch(joined):
            return
        for value in values:
            if not self._one.search(value):
                message = f"{self.what} {value!r} does not match {self.pattern!r}"
                raise ValueError(message)


_IDS = _Pattern(ID_PATTERN, "model id")
_PARAMETER_COUNTS = _Pattern(PARAMETER_COUNT_PATTERN, "parameterCount")
_QUANTIZATIONS = _Pattern(QUANTIZATION_PATTERN, "quantization")
_DIGESTS = _Pattern(SHA256_PATTERN, "sha256")
_URLS = _Pattern(URL_PATTERN, "URL")


def _check_patterns(catalog: WireCatalog) -> None:
    """The schema's patterns for the fields every entry repeats (see _wire.py); raises
    ValueError, which the caller explains in the schema's words."""
    entries = [entry for _, group in catalog.groups() for entry in group]
    _IDS.check([entry.id for entry in entries])
    _PARAMETER_COUNTS.check([e.parameter_count for e in entries if e.parameter_count is not None])
    _QUANTIZATIONS.check([e.quantization for e in entries if e.quantization is not None])
    digests = [entry.sha256 for entry in entries if entry.sha256 is not None]
    urls = [entry.download_url for entry in entries if entry.download_url is not None]
    for entry in entries:
        if entry.mirrors:
            urls += entry.mirrors
        for item in entry.files or ():
            urls.append(item.url)
            if item.mirrors:
                urls += item.mirrors
            if item.sha256 is not None:
                digests.append(item.sha256)
    _DIGESTS.check(digests)
    _URLS.check(urls)


def _explain_refusal(data: bytes, source: str, refusal: Exception) -> CatalogError:
    """The error for a document the typed decoder refused, in the JSON Schema's words."""
    document = parse_json(data, source)  # raises for anything that is not strict JSON
    import fastjsonschema

    try:
        _compiled_schema()(document)
    except fastjsonschema.JsonSchemaValueException as error:
        path = str(error.name).removeprefix("data").lstrip(".")
        what = str(error.message).removeprefix(str(error.name)).strip()
        message = f"{source}: {path or 'the document'}: {what} (schema rule: {error.rule})"
        return CatalogError(message, source=source, json_path=path, rule=error.rule)
    # The schema took what the decoder did not (it is stricter about numbers: 1.0 is no
    # integer here). Still refused, in the decoder's words.
    text = str(refusal)
    found = _AT.search(text)
    path = found.group(1).lstrip(".") if found else ""
    what = text[: found.start()] if found else text
    message = f"{source}: {path or 'the document'}: {what} (rule: type)"
    return CatalogError(message, source=source, json_path=path, rule="type")


def _fail(source: str, path: str, what: str, rule: str) -> CatalogError:
    return CatalogError(f"{source}: {path}: {what}", source=source, json_path=path, rule=rule)


def _check_semantics(catalog: WireCatalog, source: str, *, allow_http: bool) -> None:
    groups = catalog.groups()
    # The rules over the whole catalog run in bulk; only when one fails does a loop find
    # the first entry that breaks it.
    misplaced = any(entry.type != group for group, entries in groups for entry in entries)
    keys = [entry.id.lower() for _, entries in groups for entry in entries]  # as the store
    if misplaced or len(set(keys)) != len(keys):
        _check_groups_and_ids(groups, source)
    for group, entries in groups:
        for index, entry in enumerate(entries):
            _check_entry(entry, group, index, source, allow_http=allow_http)


def _check_groups_and_ids(groups: list[tuple[str, list[WireModel]]], source: str) -> None:
    """Raises for the first entry listed under another type's group, or whose id an earlier
    entry has (ids compare without regard to case, as the store compares them)."""
    seen: dict[str, tuple[str, int]] = {}
    for group, entries in groups:
        for index, entry in enumerate(entries):
            if entry.type != group:
                what = f"a model of type {entry.type!r} is listed under {group!r}"
                raise _fail(source, f"{_where(group, index)}.type", what, "type-matches-group")
            key = entry.id.lower()
            if key in seen:
                what = f"duplicate model id {entry.id!r} (first at {_where(*seen[key])})"
                raise _fail(source, f"{_where(group, index)}.id", what, "unique-id")
            seen[key] = (group, index)


def _where(group: str, index: int) -> str:
    """An entry's JSON path, written only for an error: 10,000 entries are mostly fine."""
    return f"models.{group}[{index}]"


def _repeats(items: Sequence[str] | None) -> bool:
    return items is not None and len(set(items)) != len(items)


def _check_unique_items(entry: WireModel, group: str, index: int, source: str) -> None:
    requirements = entry.device_requirements
    for items, name in (
        (entry.capabilities, "capabilities"),
        (requirements.supported_backends, "deviceRequirements.supportedBackends"),
        (requirements.device_class, "deviceRequirements.deviceClass"),
    ):
        if _repeats(items):
            path = f"{_where(group, index)}.{name}"
            message = f"{source}: {path}: must contain unique items (schema rule: uniqueItems)"
            raise CatalogError(message, source=source, json_path=path, rule="uniqueItems")


def _plain_https(url: str) -> bool:
    """An https URL whose next character starts a host: most URLs, and fine (the schema's
    pattern has already made every URL `scheme://` and something)."""
    return url.startswith("https://") and url[8:9] not in ("/", "?", "#", "")


def _check_entry(
    entry: WireModel, group: str, index: int, source: str, *, allow_http: bool
) -> None:
    # The happy path builds no JSON path and no message: a 10,000-model catalog is checked
    # on every load, and formatting paths for entries that pass was most of the checks' time.
    requirements = entry.device_requirements
    capabilities = entry.capabilities
    backends = requirements.supported_backends
    classes = requirements.device_class
    if (
        (capabilities and len(set(capabilities)) != len(capabilities))
        or (backends and len(set(backends)) != len(backends))
        or (classes and len(set(classes)) != len(classes))
    ):
        _check_unique_items(entry, group, index, source)
    files = entry.files
    url = entry.download_url
    if files is not None and url is not None:
        what = "give either downloadUrl or files, not both"
        raise _fail(source, _where(group, index), what, "one-file-list")
    if files is None:
        if url is None:
            what = "a model needs a downloadUrl or a files list"
            raise _fail(source, _where(group, index), what, "has-source")
        name = url_file_name(url)
        if not is_safe_file_name(name):
            _check_file_name(name, f"{_where(group, index)}.downloadUrl", source)
        if entry.mirrors or not _plain_https(url):
            _check_urls(
                url, entry.mirrors, group, index, "downloadUrl", source, allow_http=allow_http
            )
    else:
        names: set[str] = set()
        for number, item in enumerate(files):
            _check_file(item, group, index, number, names, source, allow_http=allow_http)
    recommended = requirements.recommended_ram
    if recommended is not None and recommended < requirements.min_ram:
        what = f"recommendedRAM {recommended} is below minRAM {requirements.min_ram}"
        path = f"{_where(group, index)}.deviceRequirements"
        raise _fail(source, path, what, "recommended-at-least-min")
    block = entry.gguf
    if block is not None:
        layers = block.block_count
        for name, value in (
            ("headCountKv", block.head_count_kv),
            ("slidingWindowLayers", block.sliding_window_layers),
        ):
            if isinstance(value, list) and len(value) != layers:
                what = f"{len(value)} entries for {layers} layers (blockCount)"
                path = f"{_where(group, index)}.gguf.{name}"
                raise _fail(source, path, what, "one-per-layer")


def _check_file(
    item: WireFile,
    group: str,
    index: int,
    number: int,
    names: set[str],
    source: str,
    *,
    allow_http: bool,
) -> None:
    name = item.name
    if not is_safe_file_name(name) or name in names:
        path = f"{_where(group, index)}.files[{number}].name"
        _check_file_name(name, path, source)
        raise _fail(source, path, f"file name {name!r} appears twice", "unique-file-name")
    names.add(name)
    if item.mirrors or not _plain_https(item.url):
        key = f"files[{number}].url"
        _check_urls(item.url, item.mirrors, group, index, key, source, allow_http=allow_http)


def _check_file_name(name: str, path: str, source: str) -> None:
    if not is_safe_file_name(name):
        what = f"file name {name!r} is not allowed: {SAFE_FILE_NAME_RULE}"
        raise _fail(source, path, what, "safe-file-name")


def _check_urls(
    url: str,
    mirrors: Sequence[str] | None,
    group: str,
    index: int,
    key: str,
    source: str,
    *,
    allow_http: bool,
) -> None:
    """Checks a file's URL and its mirrors; `key` is the URL's JSON path within its entry."""
    every = (url,) if mirrors is None else (url, *mirrors)
    for number, each in enumerate(every):
        if _plain_https(each):
            continue
        where = f"{_where(group, index)}.{key}"
        if number:
            where = f"{where.rpartition('.')[0]}.mirrors[{number - 1}]"
        _check_url(each, where, source, allow_http=allow_http)


def _check_url(url: str, where: str, source: str, *, allow_http: bool) -> None:
    scheme, host, url_path = split_url(url)
    if scheme in ("http", "file") and not allow_http:
        what = (
            f"{scheme}:// URL {url!r} is not allowed: use https (or allow plain "
            "URLs with IRIS_MODELS_ALLOW_HTTP=1 / allow_http=True for a local mirror)"
        )
        raise _fail(source, where, what, "https-only")
    if scheme != "file" and not host:
        raise _fail(source, where, f"URL {url!r} names no host", "url-has-host")
    if scheme == "hf" and url_path.count("/") < 2:
        what = f"hf:// URL {url!r} must be hf://owner/repo[@revision]/path/to/file"
        raise _fail(source, where, what, "hf-url-form")
