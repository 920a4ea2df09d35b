"""Overrides: replace any fact of a profile by its field path, from code, the environment
(IRIS_MODELS_DEVICE_OVERRIDES, a JSON object) or the command line (``--set PATH=VALUE``).

For tests, and for users whose probe gets something wrong (a container that hides the host's
RAM, a GPU the driver misreports). Paths look like ``memory.total_bytes``,
``cpu.features`` or ``vulkan.devices[0].api_version``; ``device_class`` replaces the
derived class.
"""

from __future__ import annotations

import copy
import json
import os
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ..errors import DeviceProfileError

ENV_OVERRIDES = "IRIS_MODELS_DEVICE_OVERRIDES"
DERIVED_FIELDS = frozenset({"device_class"})

_PATH_PART = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)((?:\[\d+\])*)")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12}
_SIZE_FACTORS.update({"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40})


class FrozenMapping(dict[str, Any]):
    """An override value that is a JSON object (a whole device entry), kept hashable."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted(self.items())))


def freeze(value: Any) -> Any:
    """Lists become tuples and objects FrozenMappings (recursively), so a profile holding the
    value stays hashable."""
    if isinstance(value, list):
        return tuple(freeze(item) for item in value)
    if isinstance(value, dict):
        return FrozenMapping({str(key): freeze(item) for key, item in value.items()})
    return value


def parse_assignment(text: str) -> tuple[str, Any]:
    """``PATH=VALUE`` from the command line. VALUE is JSON where it parses (``8``, ``true``,
    ``["neon","dotprod"]``), a byte size where it looks like one (``8GiB``, ``512MB``), and
    a plain string otherwise."""
    path, sep, raw = text.partition("=")
    if not sep or not path.strip():
        message = f"override {text!r}: expected PATH=VALUE, for example memory.total_bytes=8GiB"
        raise DeviceProfileError(message)
    return path.strip(), parse_value(raw.strip())


def parse_value(raw: str) -> Any:
    size = _SIZE.match(raw)
    if size is not None:  # Decimal: "8.2GB" is 8,200,000,000 bytes, not 8,199,999,999
        return int(Decimal(size.group(1)) * _SIZE_FACTORS[size.group(2).lower()])
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def from_environment(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    environ = os.environ if environ is None else environ
    text = environ.get(ENV_OVERRIDES, "").strip()
    if not text:
        return {}
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        message = f"{ENV_OVERRIDES} is not valid JSON ({error}); expected an object like "
        message += '{"memory.total_bytes": 8589934592}'
        raise DeviceProfileError(message) from None
    if not isinstance(data, dict):
        message = f"{ENV_OVERRIDES} must be a JSON object of field paths to values"
        raise DeviceProfileError(message)
    return data


def apply(facts: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `facts` (a profile's JSON data) with each override's field replaced."""
    result = copy.deepcopy(facts)
    for path, value in overrides.items():
        if path in DERIVED_FIELDS:
            continue  # recorded in the profile's overrides and applied when it is built
        parent, key = _resolve_parent(result, path)
        parent[key] = value
    return result


def _resolve_parent(data: dict[str, Any], path: str) -> tuple[Any, Any]:
    parts = path.split(".")
    node: Any = data
    steps: list[Any] = []
    for part in parts:
        match = _PATH_PART.fullmatch(part)
        if match is None:
            message = f"override {path!r}: {part!r} is not a field name"
            raise DeviceProfileError(message)
        steps.append(match.group(1))
        steps.extend(int(index) for index in re.findall(r"\[(\d+)\]", match.group(2)))
    for position, step in enumerate(steps):
        last = position == len(steps) - 1
        if isinstance(step, str):
            if not isinstance(node, dict) or step not in node:
                known = ", ".join(sorted(node)) if isinstance(node, dict) else "none"
                message = f"override {path!r}: no field {step!r} here (fields: {known})"
                raise DeviceProfileError(message)
        elif not isinstance(node, list) or step >= len(node):
            size = len(node) if isinstance(node, list) else 0
            message = f"override {path!r}: index {step} is out of range (the list has {size})"
            raise DeviceProfileError(message)
        if last:
            return node, step
        node = node[step]
    message = f"override {path!r}: empty path"
    raise DeviceProfileError(message)
