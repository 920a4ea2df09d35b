"""The device profile: what iris-models knows about a device, as frozen dataclasses.

Facts (probed, loaded from JSON, or overridden) go in; the backends usable on the device
and its device class are derived from them when the profile is built, so they can never
disagree with the facts.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import DeviceProfileError
from ._serde import from_data, to_data

SCHEMA_VERSION = 1


class DeviceClass(str, enum.Enum):
    """The original specification's four device classes, weakest first."""

    BUDGET = "BUDGET"
    MID_RANGE = "MID_RANGE"
    HIGH_END = "HIGH_END"
    FLAGSHIP = "FLAGSHIP"

    @property
    def rank(self) -> int:
        return list(DeviceClass).index(self)


class ProbeStatus(str, enum.Enum):
    """How the probe of one GPU compute API ended."""

    OK = "ok"
    NOT_INSTALLED = "not_installed"  # no loader or runtime: a normal answer
    NO_DRIVER = "no_driver"  # the loader is there, no driver (ICD) answered with a device
    ERROR = "error"  # the runtime failed; `detail` says how
    CRASHED = "crashed"  # the isolated probe process died (a driver crashed it)
    TIMED_OUT = "timed_out"  # the isolated probe process hung and was killed
    SKIPPED = "skipped"  # not probed (asked not to), or not known for a loaded profile


@dataclass(frozen=True)
class Source:
    """Where a shipped profile's facts come from."""

    url: str
    facts: str = ""


@dataclass(frozen=True)
class OSInfo:
    system: str  # "linux", "android", "macos", "windows", ...
    release: str | None = None
    android_api_level: int | None = None
    machine: str = ""  # "x86_64", "aarch64", "arm64"


@dataclass(frozen=True)
class CoreCluster:
    max_frequency_khz: int  # 0 when the kernel does not say
    cpus: tuple[int, ...]


@dataclass(frozen=True)
class CPUInfo:
    architecture: str
    vendor: str = ""
    brand: str = ""
    features: tuple[str, ...] = ()
    sve_vector_bits: int = 0
    logical_cores: int = 1
    physical_cores: int = 1
    clusters: tuple[CoreCluster, ...] = ()

    def has(self, feature: str) -> bool:
        return feature in self.features


@dataclass(frozen=True)
class MemoryInfo:
    total_bytes: int
    available_bytes: int | None = None
    bandwidth_bytes_per_s: int | None = None
    bandwidth_source: str | None = None  # "measured" or "spec"


@dataclass(frozen=True)
class StorageInfo:
    path: str | None = None  # where the model store lives
    total_bytes: int | None = None
    free_bytes: int | None = None


@dataclass(frozen=True)
class SoCInfo:
    vendor: str | None = None  # "qualcomm", "mediatek", "samsung", "apple", ...
    model: str | None = None  # "SM8650", "MT6799", "BCM2712"
    name: str | None = None  # marketing name where known
    board_platform: str | None = None  # Android ro.board.platform
    hardware: str | None = None  # /proc/cpuinfo "Hardware" or ro.hardware


@dataclass(frozen=True)
class VulkanHeap:
    size_bytes: int
    device_local: bool


@dataclass(frozen=True)
class VulkanDevice:
    name: str
    vendor_id: int
    device_type: str  # "integrated", "discrete", "virtual", "cpu", "other"
    device_id: int | None = None
    api_version: str | None = None
    driver_version: str | None = None
    driver_name: str | None = None
    driver_info: str | None = None
    memory_heaps: tuple[VulkanHeap, ...] = ()
    subgroup_size: int | None = None
    storage_buffer_16bit: bool | None = None
    shader_float16: bool | None = None
    extensions: tuple[str, ...] = ()

    @property
    def device_local_bytes(self) -> int:
        return sum(heap.size_bytes for heap in self.memory_heaps if heap.device_local)


@dataclass(frozen=True)
class VulkanInfo:
    status: ProbeStatus = ProbeStatus.SKIPPED
    detail: str = ""
    library: str | None = None
    instance_version: str | None = None
    devices: tuple[VulkanDevice, ...] = ()


@dataclass(frozen=True)
class OpenCLDevice:
    name: str
    vendor: str | None = None
    version: str | None = None
    driver_version: str | None = None
    opencl_c_version: str | None = None
    device_type: str = "gpu"  # "gpu", "cpu", "accelerator", "custom", "other"
    vendor_id: int | None = None
    global_memory_bytes: int | None = None
    max_allocation_bytes: int | None = None
    compute_units: int | None = None
    max_clock_mhz: int | None = None
    host_unified_memory: bool | None = None
    extensions: tuple[str, ...] = ()


@dataclass(frozen=True)
class OpenCLPlatform:
    name: str
    vendor: str | None = None
    version: str | None = None
    error: str = ""
    devices: tuple[OpenCLDevice, ...] = ()


@dataclass(frozen=True)
class OpenCLInfo:
    status: ProbeStatus = ProbeStatus.SKIPPED
    detail: str = ""
    library: str | None = None
    platforms: tuple[OpenCLPlatform, ...] = ()

    @property
    def devices(self) -> tuple[OpenCLDevice, ...]:
        return tuple(device for platform in self.platforms for device in platform.devices)


@dataclass(frozen=True)
class CUDADevice:
    name: str
    compute_capability: str  # "8.9"
    memory_bytes: int
    multiprocessors: int | None = None


@dataclass(frozen=True)
class CUDAInfo:
    status: ProbeStatus = ProbeStatus.SKIPPED
    detail: str = ""
    library: str | None = None
    driver_version: str | None = None  # the CUDA version the driver supports
    devices: tuple[CUDADevice, ...] = ()


@dataclass(frozen=True)
class MetalInfo:
    available: bool = False
    family: str | None = None


@dataclass(frozen=True)
class NPUInfo:
    """Signs of a neural-processing runtime, found without loading it."""

    runtime: str  # "qnn" (Qualcomm AI Engine Direct), "hexagon" (FastRPC only)
    name: str = ""
    evidence: tuple[str, ...] = ()


@dataclass(frozen=True)
class Backend:
    """One way to run a model on this device, and whether llama.cpp-class runtimes can."""

    name: str  # "cpu", "vulkan", "opencl", "cuda", "metal", "qnn"
    usable: bool
    device: str = ""  # the device or ISA level it runs on
    reason: str = ""  # why it is, or is not, usable


@dataclass(frozen=True)
class DeviceProfile:
    """Everything iris-models knows about one device.

    Build one with :func:`iris_models.device.probe` (this machine) or
    :func:`iris_models.device.load_profile` (a JSON file or a shipped profile).
    ``backends`` and ``device_class`` are derived from the facts (see
    :mod:`iris_models.device._classify` for the rule); an override in ``overrides`` under
    ``"device_class"`` replaces the derived class.
    """

    name: str
    os: OSInfo
    cpu: CPUInfo
    memory: MemoryInfo
    description: str = ""
    schema: int = SCHEMA_VERSION
    storage: StorageInfo = field(default_factory=StorageInfo)
    soc: SoCInfo = field(default_factory=SoCInfo)
    vulkan: VulkanInfo = field(default_factory=VulkanInfo)
    opencl: OpenCLInfo = field(default_factory=OpenCLInfo)
    cuda: CUDAInfo = field(default_factory=CUDAInfo)
    metal: MetalInfo = field(default_factory=MetalInfo)
    npus: tuple[NPUInfo, ...] = ()
    sources: tuple[Source, ...] = ()
    notes: str = ""
    # Field paths and the values that replaced what was probed or loaded, in the order given.
    overrides: tuple[tuple[str, Any], ...] = ()
    backends: tuple[Backend, ...] = field(init=False, compare=False)
    device_class: DeviceClass = field(init=False, compare=False)
    device_class_reasons: tuple[str, ...] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        from ._classify import derive_backends, derive_device_class

        if self.schema > SCHEMA_VERSION:
            message = (
                f"profile {self.name!r} uses schema {self.schema}, newer than this version of "
                f"iris-models understands ({SCHEMA_VERSION}); upgrade iris-models"
            )
            raise DeviceProfileError(message)
        backends = derive_backends(self)
        object.__setattr__(self, "backends", backends)
        forced = dict(self.overrides).get("device_class")
        if forced is not None:
            try:
                device_class = DeviceClass(forced)
            except ValueError:
                allowed = ", ".join(member.value for member in DeviceClass)
                message = f"override device_class: expected one of {allowed}, got {forced!r}"
                raise DeviceProfileError(message) from None
            reasons: tuple[str, ...] = ("set by an override",)
        else:
            device_class, reasons = derive_device_class(self, backends)
        object.__setattr__(self, "device_class", device_class)
        object.__setattr__(self, "device_class_reasons", reasons)

    @property
    def usable_backends(self) -> tuple[Backend, ...]:
        return tuple(backend for backend in self.backends if backend.usable)

    def to_dict(self) -> dict[str, Any]:
        """The profile as JSON-ready data (derived fields included, for readers)."""
        data: dict[str, Any] = dict.fromkeys(("schema", "name", "description"))  # keys first
        data.update(to_data(self))
        # Derived fields come with the rest (to_data includes them); overrides as an object.
        data["overrides"] = {path: to_data(value) for path, value in self.overrides}
        return data

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False)

    @classmethod
    def from_dict(cls, data: Any) -> DeviceProfile:
        """A profile from JSON data. Derived fields in the data are ignored and recomputed."""
        if not isinstance(data, dict):
            message = f"a device profile must be a JSON object, got {type(data).__name__}"
            raise DeviceProfileError(message)
        facts = dict(data)
        overrides = facts.pop("overrides", {}) or {}
        if not isinstance(overrides, dict):
            message = "overrides: expected an object of field paths to values"
            raise DeviceProfileError(message)
        facts["overrides"] = []
        profile = from_data(cls, facts)
        return _with_overrides_recorded(profile, overrides)

    @classmethod
    def from_json(cls, text: str, *, source: str = "profile") -> DeviceProfile:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            message = f"{source}: not valid JSON ({error})"
            raise DeviceProfileError(message) from None
        return cls.from_dict(data)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json() + "\n", encoding="utf-8")


def _with_overrides_recorded(profile: DeviceProfile, overrides: dict[str, Any]) -> DeviceProfile:
    from dataclasses import replace

    from ._overrides import freeze

    if not overrides:
        return profile
    return replace(profile, overrides=tuple((path, freeze(v)) for path, v in overrides.items()))
