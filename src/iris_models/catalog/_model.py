"""The catalog's values as frozen dataclasses (snake_case), built from the JSON entries
(camelCase, as the original specification names them) after validation."""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING
from urllib.parse import unquote

from ..shape import ModelShape

if TYPE_CHECKING:
    from ..device import DeviceClass

__all__ = [
    "SAFE_FILE_NAME_RULE",
    "Category",
    "DeviceRequirements",
    "ModelDescriptor",
    "ModelFileSpec",
    "ModelType",
    "Performance",
    "is_safe_file_name",
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

    def prior(self, backend: str, device_class: DeviceClass | str) -> float | None:
        """The catalog's figure for `backend` on a device class (a member or its name: the
        class is a str enum, so either finds the entry)."""
        by_class = self.tokens_per_second.get(backend)
        return None if by_class is None else by_class.get(device_class)


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

    # Cached: ranking a large catalog reads these for every model, and the descriptor is
    # frozen, so they cannot go stale.
    @cached_property
    def parameters(self) -> int | None:
        """The parameter count as a number: exact from the header facts, else parsed from
        the catalog's ``parameterCount`` label."""
        if self.shape is not None and self.shape.parameter_count:
            return self.shape.parameter_count
        return parse_parameter_count(self.parameter_count)

    @cached_property
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


def normalize_sha256(value: str | None) -> str | None:
    if value is None:
        return None
    return value if value.startswith("sha256:") else f"sha256:{value}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SAFE_FILE_NAME_RULE = (
    "it must be a plain name with no path separator, no leading '.', no '..' and no control "
    "characters"
)


def is_safe_file_name(name: str) -> bool:
    """Whether a model's file name stays inside the model's folder on every OS (the catalog
    checks it; a download of a descriptor built by hand checks it again, which is why it
    lives here and not with the checks: a pull need not import the validator)."""
    return not (
        not name
        or "/" in name
        or "\\" in name
        or name in (".", "..")
        or name.startswith(".")
        or _CONTROL.search(name) is not None
    )


_URL_PARTS = re.compile(r"([^:/?#]+)://([^/?#]*)([^?#]*)")


def split_url(url: str) -> tuple[str, str, str]:
    """(scheme, host part, path) of a URL, as urlsplit finds them for the URLs a catalog may
    hold (``scheme://`` then no whitespace), in one regex match: urlsplit costs more per
    distinct URL (its cache keeps 128) and raises ValueError for a malformed IPv6 host."""
    match = _URL_PARTS.match(url)
    if match is None:
        return "", "", url
    scheme, host, path = match.groups()
    return scheme.lower(), host, path


def url_file_name(url: str) -> str:
    """The last path segment of a URL, percent-decoded (``.../resolve/main/x.gguf`` -> x.gguf)."""
    if "?" in url or "#" in url or url.count("/") < 3:
        name = split_url(url)[2].rpartition("/")[2]
    else:  # scheme://host/path with no query: the common case, without the regex
        name = url.rpartition("/")[2]
    return unquote(name) if "%" in name else name
