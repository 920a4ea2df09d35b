"""Compiles the bundled models.json into _bundled.py: the same descriptors, written as the
Python source that builds them, so that a process reading only the bundled catalog neither
imports msgspec (with the stdlib modules it loads, a third of the 50 ms start-up budget) nor
checks the same file again on every start.

    python -m iris_models.catalog._compile      # after every edit of models.json

models.json stays the source: the compiled module is used only while models.json has the size
and CRC-32 it was compiled from (see _catalog._bundled; a guard against a stale module, not
against tampering, since whoever can edit the one can edit the other), and a test fails while
_bundled.py differs from what this module writes."""

from __future__ import annotations

import dataclasses
import enum
import sys
import zlib
from pathlib import Path
from typing import Any

from ._catalog import BUNDLED

__all__ = ["COMPILED", "SOURCE", "render"]

SOURCE = Path(__file__).with_name("models.json")
COMPILED = Path(__file__).with_name("_bundled.py")

_HEADER = '''\
"""The bundled catalog (models.json), compiled: written by `python -m
iris_models.catalog._compile`, do not edit. Read its docstring for when it is used."""

# fmt: off

from __future__ import annotations

from ..shape import ModelShape
from ._model import (
    Category,
    DeviceRequirements,
    ModelDescriptor,
    ModelFileSpec,
    ModelType,
    Performance,
)

__all__ = ["CATEGORIES", "MODELS", "SOURCE_CRC32", "SOURCE_SIZE"]
'''


def render(data: bytes) -> str:
    """The module's text for the catalog in `data`, validated as any catalog is."""
    from ._build import descriptors
    from ._validate import validated_catalog

    models, categories = descriptors(validated_catalog(data, BUNDLED), BUNDLED)
    lines = [
        _HEADER,
        f"SOURCE_SIZE = {len(data)}",
        f"SOURCE_CRC32 = 0x{zlib.crc32(data):08x}",
        "",
        f"MODELS: tuple[ModelDescriptor, ...] = {_python(tuple(models))}",
        "",
        "CATEGORIES: dict[ModelType, Category] = {",
        *(f"    {_python(kind)}: {_python(info, '    ')}," for kind, info in categories.items()),
        "}",
        "",
    ]
    return "\n".join(lines)


def _python(value: Any, indent: str = "") -> str:
    """Source that evaluates to `value`: a dataclass by its non-default fields, one per line;
    an enum member by name; containers item by item; anything else by repr."""
    inner = indent + "    "
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        arguments = [
            f"{inner}{item.name}={_python(getattr(value, item.name), inner)},\n"
            for item in dataclasses.fields(value)
            if item.init and not _is_default(item, getattr(value, item.name))
        ]
        return f"{type(value).__name__}(\n{''.join(arguments)}{indent})"
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, tuple) and any(dataclasses.is_dataclass(item) for item in value):
        items = "".join(f"{inner}{_python(item, inner)},\n" for item in value)
        return f"(\n{items}{indent})"
    if isinstance(value, tuple):
        parts = [_python(item, inner) for item in value]
        return f"({parts[0]},)" if len(parts) == 1 else f"({', '.join(parts)})"
    if isinstance(value, dict):
        pairs = ", ".join(f"{_python(k, inner)}: {_python(v, inner)}" for k, v in value.items())
        return "{" + pairs + "}"
    if value is None or isinstance(value, (str, int, float, bool)):
        return repr(value)
    message = f"cannot write a {type(value).__name__} as Python source"
    raise TypeError(message)


def _is_default(item: dataclasses.Field[Any], value: Any) -> bool:
    if item.default is not dataclasses.MISSING:
        return bool(value == item.default)
    if item.default_factory is not dataclasses.MISSING:
        return bool(value == item.default_factory())
    return False


def main() -> int:
    COMPILED.write_text(render(SOURCE.read_bytes()), encoding="utf-8")
    print(f"wrote {COMPILED} from {SOURCE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
