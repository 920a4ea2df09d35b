"""Catalog entries, once checked, turned into the catalog's values: one descriptor per entry,
one Category per group. Only a catalog that was read and validated needs this (with msgspec);
the bundled catalog's values come compiled (see _compile.py)."""

from __future__ import annotations

from msgspec import to_builtins

from .._frozen import builder
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
    return _new_descriptor(
        entry.id,  # id
        entry.name,  # name
        _TYPES[entry.type],  # type
        _new_requirements(
            requirements.min_ram,  # min_ram_bytes
            requirements.recommended_ram,  # recommended_ram_bytes
            requirements.min_android_version,  # min_android_api
            requirements.supported_backends or _EMPTY,  # supported_backends
            requirements.device_class or _EMPTY,  # device_classes
        ),  # requirements
        entry_files(entry),  # files
        entry.description,  # description
        entry.parameter_count,  # parameter_count
        entry.quantization,  # quantization
        entry.file_size,  # file_size_bytes
        entry.file_size_approximate,  # file_size_approximate
        entry.context_size,  # context_size
        entry.vocab_size,  # vocab_size
        entry.dimensions,  # dimensions
        entry.max_sequence_length,  # max_sequence_length
        entry.capabilities or _EMPTY,  # capabilities
        entry.license,  # license
        entry.architecture,  # architecture
        entry.verified,  # verified
        entry.notes,  # notes
        None
        if performance is None
        else _new_performance(
            performance.tokens_per_second or {},  # tokens_per_second
            performance.power_consumption or "UNKNOWN",  # power_consumption
            performance.thermal_profile or "UNKNOWN",  # thermal_profile
        ),  # performance
        # The block's JSON form (camelCase, absent fields left out), as the shape reads it.
        None if block is None else ModelShape.from_catalog(to_builtins(block)),  # shape
        source,  # source
    )


_TYPES = {member.value: member for member in ModelType}
_new_descriptor = builder(ModelDescriptor)
_new_requirements = builder(DeviceRequirements)
_new_performance = builder(Performance)
_new_file_spec = builder(ModelFileSpec)
# The wire's name lists are tuples already (msgspec builds them in C), shared as they are.
_EMPTY: tuple[str, ...] = ()


def entry_files(entry: WireModel) -> tuple[ModelFileSpec, ...]:
    """The entry's files: its ``files`` list, or the one file the specification's
    ``downloadUrl`` / ``sha256`` / ``fileSize`` describe."""
    if entry.files is not None:
        return tuple(
            _new_file_spec(
                item.name,  # name
                item.url,  # url
                item.mirrors or _EMPTY,  # mirrors
                item.size,  # size_bytes
                item.size_approximate,  # size_approximate
                normalize_sha256(item.sha256),  # sha256
                item.role,  # role
                None if item.pieces is None else item.pieces.size,  # piece_size
                _EMPTY if item.pieces is None else item.pieces.sha256,  # piece_sha256
            )
            for item in entry.files
        )
    url = entry.download_url
    assert url is not None  # the checks refuse an entry with neither
    spec = _new_file_spec(
        url_file_name(url),  # name
        url,  # url
        entry.mirrors or _EMPTY,  # mirrors
        entry.file_size,  # size_bytes
        entry.file_size_approximate,  # size_approximate
        normalize_sha256(entry.sha256),  # sha256
        "model",  # role
        None,  # piece_size
        _EMPTY,  # piece_sha256
    )
    return (spec,)
