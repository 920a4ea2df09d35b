"""The catalog file's format as typed msgspec structs, mirroring models.schema.json rule for rule,
so that one C pass parses, type-checks and builds a 10,000-model catalog.

The JSON Schema stays the authority: when these structs refuse a document, the schema is run
on it to name the JSON path and the rule (see _validate.py), and the tests check that every
document accepted here passes the schema too. What a struct cannot say (unique items) is
checked with the other semantic rules, and so are the five string patterns that recur in every
entry (the *_PATTERN constants: ids, parameter counts, quantizations, digests, URLs): msgspec
runs a pattern through Python's re once per value, which was a third of the decode, where
_validate runs each once over all the values. Attributes are snake_case; the JSON's camelCase
names come from msgspec's rename (and `field(name=...)` where camelCase would not give them)."""

from typing import TYPE_CHECKING, Annotated, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct, field

# An optional field: `Absent[int] = None` reads as None when the field is left out, yet an
# explicit null is refused, as the schema refuses it: msgspec checks values against the
# annotation (here the bare type) and never checks the default. Type checkers see `int | None`.
if TYPE_CHECKING:
    from typing import TypeAlias

    _T = TypeVar("_T")
    Absent: TypeAlias = "_T | None"
else:

    class _Absent:
        def __getitem__(self, kind: object) -> object:
            return kind

    Absent = _Absent()

__all__ = [
    "ID_PATTERN",
    "PARAMETER_COUNT_PATTERN",
    "QUANTIZATION_PATTERN",
    "SHA256_PATTERN",
    "URL_PATTERN",
    "WireCatalog",
    "WireFile",
    "WireGGUF",
    "WireModel",
    "decode_catalog",
]

_TIMESTAMP = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})$"
)
MAX_BYTES = 4398046511104  # 4 TiB: a larger size is a typo, not a model


Bytes = Annotated[int, Meta(ge=1, le=MAX_BYTES)]
NonNegativeBytes = Annotated[int, Meta(ge=0, le=MAX_BYTES)]
# The schema's patterns that _validate checks over all values at once (see the docstring).
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$"
PARAMETER_COUNT_PATTERN = r"^[0-9]+(\.[0-9]+)?[KMBT]$"
QUANTIZATION_PATTERN = r"^[A-Za-z0-9_]{1,32}$"
SHA256_PATTERN = r"^(sha256:)?[0-9a-f]{64}$"
URL_PATTERN = r"^(https?|hf|file)://[^\s]+$"

Sha256 = str  # SHA256_PATTERN
Url = Annotated[str, Meta(min_length=1, max_length=4096)]  # and URL_PATTERN
FileName = Annotated[str, Meta(min_length=1, max_length=255)]
Layers = Annotated[int, Meta(ge=1, le=4096)]
Tokens = Annotated[int, Meta(ge=1, le=16777216)]
Heads = Annotated[int, Meta(ge=0, le=65536)]
HeadSize = Annotated[int, Meta(ge=1, le=65536)]
Count = Annotated[int, Meta(ge=0, le=16777216)]
Backend = Literal[
    "CPU", "CPU_NEON", "CPU_X86", "OPENCL_ADRENO", "VULKAN_MALI", "VULKAN", "QNN_HEXAGON",
    "METAL", "CUDA",
]  # fmt: skip
DeviceClass = Literal["BUDGET", "MID_RANGE", "HIGH_END", "FLAGSHIP"]
Capability = Literal[
    "text_generation", "chat", "reasoning", "code", "tool_use", "vision", "multilingual",
    "text_embedding", "semantic_search", "safety_classification", "content_moderation",
]  # fmt: skip
TokensPerSecond = Annotated[float, Meta(gt=0, le=100000)]


class _Strict(Struct, forbid_unknown_fields=True, rename="camel", gc=False):
    """Unknown fields are refused, as the schema's additionalProperties: false. Not tracked
    by the garbage collector (gc=False): these structs live only while a catalog is checked
    and built, and hold no reference that could lead back to them."""


class WireRequirements(_Strict):
    min_ram: Bytes = field(name="minRAM")
    recommended_ram: Absent[Bytes] = field(default=None, name="recommendedRAM")
    min_android_version: Absent[Annotated[int, Meta(ge=1, le=1000)]] = None
    supported_backends: Absent[Annotated[tuple[Backend, ...], Meta(min_length=1)]] = None
    device_class: Absent[Annotated[tuple[DeviceClass, ...], Meta(min_length=1)]] = None


class WirePerformance(_Strict):
    tokens_per_second: Absent[dict[Backend, dict[DeviceClass, TokensPerSecond]]] = None
    power_consumption: Absent[Literal["LOW", "MEDIUM", "HIGH", "UNKNOWN"]] = None
    thermal_profile: Absent[Literal["COOL", "WARM", "HOT", "UNKNOWN"]] = None


class WirePieces(_Strict):
    size: Annotated[int, Meta(ge=65536, le=4294967296)]
    sha256: Annotated[
        tuple[Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")], ...], Meta(min_length=1)
    ]


class WireFile(_Strict):
    name: FileName
    url: Url
    mirrors: Absent[Annotated[tuple[Url, ...], Meta(max_length=32)]] = None
    size: Bytes | None = None
    size_approximate: bool = False
    sha256: Sha256 | None = None
    role: Literal["model", "shard", "projector", "extra"] = "model"
    pieces: Absent[WirePieces] = None


class WireGGUF(_Strict, omit_defaults=True):
    """Absent fields stay out of its JSON form (msgspec.to_builtins), as ModelShape reads it."""

    architecture: Annotated[str, Meta(min_length=1, max_length=64)]
    block_count: Layers
    embedding_length: Annotated[int, Meta(ge=1, le=1048576)]
    head_count: Heads
    head_count_kv: Heads | Annotated[list[Heads], Meta(min_length=1, max_length=4096)]
    weights_bytes: Bytes
    key_length: Absent[HeadSize] = None
    value_length: Absent[HeadSize] = None
    feed_forward_length: Absent[Count] = None
    sliding_window: Absent[Tokens] = None
    sliding_window_layers: Absent[Annotated[list[bool], Meta(min_length=1, max_length=4096)]] = None
    context_length: Absent[Tokens] = None
    vocab_size: Absent[Tokens] = None
    token_embedding_bytes: Absent[NonNegativeBytes] = None
    expert_bytes: Absent[NonNegativeBytes] = None
    tied_output: Absent[bool] = None
    header_bytes: Absent[NonNegativeBytes] = None
    tensor_count: Absent[Count] = None
    parameter_count: Absent[Annotated[int, Meta(ge=0, le=10**15)]] = None
    expert_count: Absent[Heads] = None
    expert_used_count: Absent[Heads] = None
    tokenizer_model: Absent[Annotated[str, Meta(max_length=64)]] = None
    merges_count: Absent[Count] = None
    causal: Absent[bool] = None


class WireModel(_Strict):
    id: str  # ID_PATTERN
    name: Annotated[str, Meta(min_length=1, max_length=200)]
    type: Literal["llm", "embedding", "safety"]
    device_requirements: WireRequirements
    description: Annotated[str, Meta(max_length=10000)] = ""
    parameter_count: Absent[str] = None  # PARAMETER_COUNT_PATTERN
    quantization: Absent[str] = None  # QUANTIZATION_PATTERN
    file_size: Bytes | None = None
    file_size_approximate: bool = False
    context_size: Absent[Tokens] = None
    vocab_size: Absent[Tokens] = None
    dimensions: Absent[Annotated[int, Meta(ge=1, le=1048576)]] = None
    max_sequence_length: Absent[Tokens] = None
    capabilities: Absent[tuple[Capability, ...]] = None
    license: Absent[Annotated[str, Meta(max_length=100)]] = None
    architecture: Absent[Annotated[str, Meta(max_length=64)]] = None
    download_url: Absent[Url] = None
    mirrors: Absent[Annotated[tuple[Url, ...], Meta(max_length=32)]] = None
    sha256: Sha256 | None = None
    files: Absent[Annotated[list[WireFile], Meta(min_length=1, max_length=1024)]] = None
    verified: bool = False
    notes: Annotated[str, Meta(max_length=10000)] = ""
    gguf: Absent[WireGGUF] = None
    performance: Absent[WirePerformance] = None


Models = Annotated[list[WireModel], Meta(max_length=1000000)]


class WireGroups(_Strict):
    llm: Absent[Models] = None
    embedding: Absent[Models] = None
    safety: Absent[Models] = None


class WireCategory(_Strict):
    name: Annotated[str, Meta(min_length=1)]
    description: Absent[str] = None
    icon: Absent[str] = None


class WireCategories(_Strict):
    llm: Absent[WireCategory] = None
    embedding: Absent[WireCategory] = None
    safety: Absent[WireCategory] = None


class WireCatalog(_Strict):
    version: Annotated[str, Meta(pattern=r"^[0-9]+(\.[0-9]+)*$")]
    models: WireGroups
    schema: Absent[str] = field(default=None, name="$schema")
    last_updated: Absent[Annotated[str, Meta(pattern=_TIMESTAMP)]] = None
    categories: Absent[WireCategories] = None

    def groups(self) -> list[tuple[str, list[WireModel]]]:
        """(group name, its models) for each group present: llm, embedding, safety."""
        found = []
        for name in ("llm", "embedding", "safety"):
            entries = getattr(self.models, name)
            if entries is not None:
                found.append((name, entries))
        return found


_DECODER = msgspec.json.Decoder(WireCatalog)


def decode_catalog(data: bytes) -> WireCatalog:
    """Parses and type-checks a catalog file; raises msgspec.DecodeError (of which
    ValidationError is a kind) on anything the schema would refuse."""
    return _DECODER.decode(data)
