"""Dataclass <-> JSON for the device profile: typed decoding with errors that name the path.

Profiles come from users' files, so a wrong type or an unknown key must say where it is
(``cpu.clusters[1].cpus[0]: expected an integer, got "x"``), not fail somewhere later.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from ..errors import DeviceProfileError

T = TypeVar("T")


def to_data(value: Any) -> Any:
    """A JSON-ready copy of a dataclass tree: enums by value, tuples as lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: to_data(getattr(value, field.name)) for field in _fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [to_data(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): to_data(item) for key, item in value.items()}
    return value


def from_data(cls: type[T], data: Any, path: str = "") -> T:
    """Builds dataclass `cls` from JSON data, checking every field's type."""
    return typing.cast("T", _decode(cls, data, path))


def _fields(value: Any) -> list[dataclasses.Field[Any]]:
    return [field for field in dataclasses.fields(value) if field.init or field.repr]


def _decode(kind: Any, data: Any, path: str) -> Any:
    origin = get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = get_args(kind)
        if data is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _decode(option, data, path)
            except DeviceProfileError as error:
                errors.append(error)
        raise errors[0]
    if origin is tuple:
        item_kind = get_args(kind)[0]
        if not isinstance(data, list):
            _fail(path, "a list", data)
        return tuple(
            _decode(item_kind, item, f"{path}[{index}]") for index, item in enumerate(data)
        )
    if dataclasses.is_dataclass(kind):
        return _decode_dataclass(kind, data, path)
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(data)
        except ValueError:
            allowed = ", ".join(repr(member.value) for member in kind)
            _fail(path, f"one of {allowed}", data)
    if kind is bool:
        if not isinstance(data, bool):
            _fail(path, "true or false", data)
        return data
    if kind is int:
        if isinstance(data, bool) or not isinstance(data, int):
            _fail(path, "an integer", data)
        return data
    if kind is float:
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            _fail(path, "a number", data)
        return float(data)
    if kind is str:
        if not isinstance(data, str):
            _fail(path, "a string", data)
        return data
    if kind is Any:
        return data
    message = f"{path or 'profile'}: no decoder for {kind!r}"
    raise TypeError(message)


def _decode_dataclass(cls: Any, data: Any, path: str) -> Any:
    if not isinstance(data, dict):
        _fail(path, "an object", data)
    hints = _type_hints(cls)
    init_fields = {field.name: field for field in dataclasses.fields(cls) if field.init}
    derived = {field.name for field in dataclasses.fields(cls) if not field.init}
    unknown = sorted(set(data) - set(init_fields) - derived)
    if unknown:
        where = f"{path}: " if path else ""
        known = ", ".join(sorted(init_fields))
        message = f"{where}unknown key {unknown[0]!r} (known keys: {known})"
        raise DeviceProfileError(message)
    values = {}
    for name, field in init_fields.items():
        child = f"{path}.{name}" if path else name
        if name in data:
            values[name] = _decode(hints[name], data[name], child)
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            message = f"{child}: missing"
            raise DeviceProfileError(message)
    return cls(**values)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    # Evaluating string annotations compiles each one: once per class, not per profile.
    return get_type_hints(cls)


def _fail(path: str, expected: str, data: Any) -> typing.NoReturn:
    shown = repr(data)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    message = f"{path or 'profile'}: expected {expected}, got {shown}"
    raise DeviceProfileError(message)
