"""Catalog entries, once checked, turned into the catalog's values: one descriptor per entry,
one Category per group. Only a catalog that was read and validated needs this (with msgspec);
the bundled catalog's values come compiled (see _compile.py)."""

from __future__ import annotations

from msgspec import to_builtins

from .._frozen import frozen
from ..shape import ModelShape
from ._model import (
    Category,
    DeviceRequirements,
    ModelDescriptor,
    ModelFileSpec,
    ModelType,
    Performance,
    normalize_sha256,
    url_file_name,
)
from ._wire import WireCatalog, WireModel

__all__ = ["descriptor_from_wire", "descriptors", "entry_files"]


def descriptors(
    catalog: WireCatalog, source: str
) -> tuple[list[ModelDescriptor], dict[ModelType, Category]]:
    """The models of a checked catalog, in file order, and its categories by type."""
    models = [
        descriptor_from_wire(entry, source) for _, entries in catalog.groups() for entry in entries
    ]
    categories = {}
    if catalog.categories is not None:
        for kind in ModelType:
            info = getattr(catalog.categories, kind.value)
            if info is not None:
                categories[kind] = Category(
                    name=info.name,
                    description=info.description or "",
                    icon=info.icon or "",
                )
    return models, categories


def descriptor_from_wire(entry: WireModel, source: str) -> ModelDescriptor:
    """A descriptor from one checked catalog entry."""
    requirements = entry.device_requirements
    performance = entry.performance
    block = entry.gguf
    return frozen(
        ModelDescriptor,
        {
            "id": entry.id,
            "name": entry.name,
            "type": _TYPES[entry.type],
            "requirements": frozen(
                DeviceRequirements,
                {
                    "min_ram_bytes": requirements.min_ram,
                    "recommended_ram_bytes": requirements.recommended_ram,
                    "min_android_api": requirements.min_android_version,
                    "supported_backends": requirements.supported_backends or _EMPTY,
                    "device_classes": requirements.device_class or _EMPTY,
                },
            ),
            "files": entry_files(entry),
            "description": entry.description,
            "parameter_count": entry.parameter_count,
            "quantization": entry.quantization,
            "file_size_bytes": entry.file_size,
            "file_size_approximate": entry.file_size_approximate,
            "context_size": entry.context_size,
            "vocab_size": entry.vocab_size,
            "dimensions": entry.dimensions,
            "max_sequence_length": entry.max_sequence_length,
            "capabilities": entry.capabilities or _EMPTY,
            "license": entry.license,
            "architecture": entry.architecture,
            "verified": entry.verified,
            "notes": entry.notes,
            "performance": None
            if performance is None
            else frozen(
                Performance,
                {
                    "tokens_per_second": performance.tokens_per_second or {},
                    "power_consumption": performance.power_consumption or "UNKNOWN",
                    "thermal_profile": performance.thermal_profile or "UNKNOWN",
                },
            ),
            # The block's JSON form (camelCase, absent fields left out), as the shape reads it.
            "shape": None if block is None else ModelShape.from_catalog(to_builtins(block)),
            "source": source,
        },
    )


_TYPES = {member.value: member for member in ModelType}
# The wire's name lists are tuples already (msgspec builds them in C), shared as they are.
_EMPTY: tuple[str, ...] = ()


def entry_files(entry: WireModel) -> tuple[ModelFileSpec, ...]:
    """The entry's files: its ``files`` list, or the one file the specification's
    ``downloadUrl`` / ``sha256`` / ``fileSize`` describe."""
    if entry.files is not None:
        return tuple(
            frozen(
                ModelFileSpec,
                {
                    "name": item.name,
                    "url": item.url,
                    "mirrors": item.mirrors or _EMPTY,
                    "size_bytes": item.size,
                    "size_approximate": item.size_approximate,
                    "sha256": normalize_sha256(item.sha256),
                    "role": item.role,
                    "piece_size": None if item.pieces is None else item.pieces.size,
                    "piece_sha256": _EMPTY if item.pieces is None else item.pieces.sha256,
                },
            )
            for item in entry.files
        )
    url = entry.download_url
    assert url is not None  # the checks refuse an entry with neither
    spec = frozen(
        ModelFileSpec,
        {
            "name": url_file_name(url),
            "url": url,
            "mirrors": entry.mirrors or _EMPTY,
            "size_bytes": entry.file_size,
            "size_approximate": entry.file_size_approximate,
            "sha256": normalize_sha256(entry.sha256),
            "role": "model",
            "piece_size": None,
            "piece_sha256": _EMPTY,
        },
    )
    return (spec,)
