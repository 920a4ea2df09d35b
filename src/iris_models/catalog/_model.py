"""The catalog's values as frozen dataclasses (snake_case), built from the JSON entries
(camelCase, as the original specification names them) after validation."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from ..shape import ModelShape

if TYPE_CHECKING:
    from ..device import DeviceClass

__all__ = [
    "Category",
    "DeviceRequirements",
    "ModelDescriptor",
    "ModelFileSpec",
    "ModelType",
    "Performance",
    "parse_parameter_count",
]


class ModelType(str, enum.Enum):
    LLM = "llm"
    EMBEDDING = "embedding"
    SAFETY = "safety"


@dataclass(frozen=True)
class Category:
    name: str
    description: str = ""
    icon: str = ""


@dataclass(frozen=True)
class ModelFileSpec:
    """One file of a model: where to get it and what it must be."""

    name: str
    url: str
    """As the catalog gives it: ``https://``, ``hf://owner/repo@revision/path`` or ``file://``."""
    mirrors: tuple[str, ...] = ()
    size_bytes: int | None = None
    size_approximate: bool = False
    sha256: str | None = None
    """``sha256:<hex>``, or None where no digest is known."""
    role: str = "model"  # "model", "shard", "projector", "extra"
    piece_size: int | None = None
    piece_sha256: tuple[str, ...] = ()


@dataclass(frozen=True)
class DeviceRequirements:
    min_ram_bytes: int
    recommended_ram_bytes: int | None = None
    min_android_api: int | None = None
    supported_backends: tuple[str, ...] = ()
    """Catalog backend names (``CPU_NEON``, ``OPENCL_ADRENO``, ...); empty means any."""
    device_classes: tuple[str, ...] = ()
    """Device class names (``BUDGET`` ... ``FLAGSHIP``) the model is tuned for; empty means
    all. Strings, so that reading a catalog does not import the device layer."""


@dataclass(frozen=True)
class Performance:
    tokens_per_second: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    """backend -> device class -> decode tokens per second, as the catalog states them."""
    power_consumption: str = "UNKNOWN"
    thermal_profile: str = "UNKNOWN"

    def prior(self, backend: str, device_class: DeviceClass) -> float | None:
        return self.tokens_per_second.get(backend, {}).get(device_class.value)


@dataclass(frozen=True)
class ModelDescriptor:
    """One model the catalog offers."""

    id: str
    name: str
    type: ModelType
    requirements: DeviceRequirements
    files: tuple[ModelFileSpec, ...]
    description: str = ""
    parameter_count: str | None = None
    """As the catalog writes it (``"1.1B"``); see :attr:`parameters` for the number."""
    quantization: str | None = None
    file_size_bytes: int | None = None
    file_size_approximate: bool = False
    context_size: int | None = None
    vocab_size: int | None = None
    dimensions: int | None = None
    max_sequence_length: int | None = None
    capabilities: tuple[str, ...] = ()
    license: str | None = None
    architecture: str | None = None
    verified: bool = False
    """True when the URL, size and digest were confirmed against the real file."""
    notes: str = ""
    performance: Performance | None = None
    shape: ModelShape | None = None
    """Facts from the GGUF header, where the catalog carries them."""
    source: str = ""
    """The catalog source (a file, a URL, ``bundled``) this entry came from."""

    @property
    def download_url(self) -> str:
        return self.files[0].url

    @property
    def sha256(self) -> str | None:
        return self.files[0].sha256

    @property
    def parameters(self) -> int | None:
        """The parameter count as a number: exact from the header facts, else parsed from
        the catalog's ``parameterCount`` label."""
        if self.shape is not None and self.shape.parameter_count:
            return self.shape.parameter_count
        return parse_parameter_count(self.parameter_count)

    @property
    def total_size_bytes(self) -> int | None:
        """The bytes of all files, or None when one size is not known."""
        sizes = [spec.size_bytes for spec in self.files]
        if any(size is None for size in sizes):
            return self.file_size_bytes
        return sum(size for size in sizes if size is not None)

    def matches(self, query: str) -> bool:
        """Whether every word of `query` appears in the id, name, description, architecture,
        quantization or capabilities (case-insensitive)."""
        haystack = " ".join(
            (
                self.id,
                self.name,
                self.description,
                self.architecture or "",
                self.quantization or "",
                " ".join(self.capabilities),
                self.type.value,
            )
        ).lower()
        return all(word in haystack for word in query.lower().split())


_PARAMETER_LABEL = re.compile(r"([0-9]+(?:\.[0-9]+)?)([KMBT])")
_SCALE = {"K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


def parse_parameter_count(label: str | None) -> int | None:
    """``"1.1B"`` -> 1_100_000_000; None for a missing or unreadable label."""
    if not label:
        return None
    match = _PARAMETER_LABEL.fullmatch(label.strip())
    if match is None:
        return None
    return round(float(match.group(1)) * _SCALE[match.group(2)])


def descriptor_from_entry(entry: Mapping[str, Any], source: str) -> ModelDescriptor:
    """A descriptor from one validated catalog entry."""
    requirements = entry["deviceRequirements"]
    performance = entry.get("performance")
    block = entry.get("gguf")
    return ModelDescriptor(
        id=entry["id"],
        name=entry["name"],
        type=ModelType(entry["type"]),
        requirements=DeviceRequirements(
            min_ram_bytes=requirements["minRAM"],
            recommended_ram_bytes=requirements.get("recommendedRAM"),
            min_android_api=requirements.get("minAndroidVersion"),
            supported_backends=tuple(requirements.get("supportedBackends", ())),
            device_classes=tuple(requirements.get("deviceClass", ())),
        ),
        files=entry_files(entry),
        description=entry.get("description", ""),
        parameter_count=entry.get("parameterCount"),
        quantization=entry.get("quantization"),
        file_size_bytes=entry.get("fileSize"),
        file_size_approximate=entry.get("fileSizeApproximate", False),
        context_size=entry.get("contextSize"),
        vocab_size=entry.get("vocabSize"),
        dimensions=entry.get("dimensions"),
        max_sequence_length=entry.get("maxSequenceLength"),
        capabilities=tuple(entry.get("capabilities", ())),
        license=entry.get("license"),
        architecture=entry.get("architecture"),
        verified=entry.get("verified", False),
        notes=entry.get("notes", ""),
        performance=None
        if performance is None
        else Performance(
            tokens_per_second=performance.get("tokensPerSecond", {}),
            power_consumption=performance.get("powerConsumption", "UNKNOWN"),
            thermal_profile=performance.get("thermalProfile", "UNKNOWN"),
        ),
        shape=ModelShape.from_catalog(block) if block is not None else None,
        source=source,
    )


def entry_files(entry: Mapping[str, Any]) -> tuple[ModelFileSpec, ...]:
    """The entry's files: its ``files`` list, or the one file the specification's
    ``downloadUrl`` / ``sha256`` / ``fileSize`` describe."""
    listed = entry.get("files")
    if listed:
        return tuple(
            ModelFileSpec(
                name=item["name"],
                url=item["url"],
                mirrors=tuple(item.get("mirrors", ())),
                size_bytes=item.get("size"),
                size_approximate=item.get("sizeApproximate", False),
                sha256=normalize_sha256(item.get("sha256")),
                role=item.get("role", "model"),
                piece_size=item["pieces"]["size"] if "pieces" in item else None,
                piece_sha256=tuple(item["pieces"]["sha256"]) if "pieces" in item else (),
            )
            for item in listed
        )
    url = entry["downloadUrl"]
    return (
        ModelFileSpec(
            name=url_file_name(url),
            url=url,
            mirrors=tuple(entry.get("mirrors", ())),
            size_bytes=entry.get("fileSize"),
            size_approximate=entry.get("fileSizeApproximate", False),
            sha256=normalize_sha256(entry.get("sha256")),
        ),
    )


def normalize_sha256(value: str | None) -> str | None:
    if value is None:
        return None
    return value if value.startswith("sha256:") else f"sha256:{value}"


def url_file_name(url: str) -> str:
    """The last path segment of a URL, percent-decoded (``.../resolve/main/x.gguf`` -> x.gguf)."""
    return unquote(urlsplit(url).path.rsplit("/", 1)[-1])
