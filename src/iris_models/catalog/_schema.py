"""The catalog's JSON Schema, shipped beside the bundled models.json: the authority on the
format (the typed decoder in _wire.py mirrors it rule for rule)."""

from __future__ import annotations

from typing import Any

__all__ = ["SCHEMA_NAME", "load_schema"]

SCHEMA_NAME = "models.schema.json"


def load_schema() -> dict[str, Any]:
    import json  # here: reading a catalog never needs the schema, nor the json module
    from importlib import resources

    text = (resources.files(__package__) / SCHEMA_NAME).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
