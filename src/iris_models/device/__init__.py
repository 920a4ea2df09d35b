"""What this device is and can run: CPU, memory, storage, GPUs, NPUs, SoC, and the device
class and backends derived from them.

>>> from iris_models import device
>>> profile = device.probe()             # this machine (GPU answers cached)
>>> profile.device_class, [b.name for b in profile.usable_backends]
>>> phone = device.load_profile("snapdragon-flagship-phone")   # a shipped profile
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from .._paths import store_root
from ..errors import DeviceProfileError
from . import _overrides
from ._classify import isa_level
from ._profile import (
    Backend,
    CoreCluster,
    CPUInfo,
    CUDADevice,
    CUDAInfo,
    DeviceClass,
    DeviceProfile,
    MemoryInfo,
    MetalInfo,
    NPUInfo,
    OpenCLDevice,
    OpenCLInfo,
    OpenCLPlatform,
    OSInfo,
    ProbeStatus,
    SoCInfo,
    Source,
    StorageInfo,
    VulkanDevice,
    VulkanHeap,
    VulkanInfo,
)

__all__ = [
    "Backend",
    "CPUInfo",
    "CUDADevice",
    "CUDAInfo",
    "CoreCluster",
    "DeviceClass",
    "DeviceProfile",
    "DeviceProfileError",
    "MemoryInfo",
    "MetalInfo",
    "NPUInfo",
    "OSInfo",
    "OpenCLDevice",
    "OpenCLInfo",
    "OpenCLPlatform",
    "ProbeStatus",
    "SoCInfo",
    "Source",
    "StorageInfo",
    "VulkanDevice",
    "VulkanHeap",
    "VulkanInfo",
    "current",
    "isa_level",
    "load_profile",
    "probe",
    "shipped_profiles",
]

ENV_NO_GPU = "IRIS_MODELS_NO_GPU_PROBE"
ENV_PROFILE = "IRIS_MODELS_DEVICE_PROFILE"


def current(
    profile: str | os.PathLike[str] | None = None,
    *,
    overrides: Mapping[str, Any] | None = None,
    refresh: bool = False,
) -> DeviceProfile:
    """The profile to plan for: `profile` (a JSON file or shipped profile name) if given,
    else the one named by IRIS_MODELS_DEVICE_PROFILE, else this machine, probed."""
    chosen = profile if profile is not None else os.environ.get(ENV_PROFILE) or None
    if chosen is not None:
        environment = _overrides.from_environment()
        return load_profile(chosen, overrides={**environment, **(overrides or {})})
    return probe(refresh=refresh, overrides=overrides)


def probe(
    *,
    gpu: bool | None = None,
    bandwidth: bool = True,
    refresh: bool = False,
    store_path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> DeviceProfile:
    """Probes this device.

    gpu: probe Vulkan, OpenCL and CUDA, each in an isolated child process with a timeout
        (IRIS_MODELS_GPU_PROBE_TIMEOUT_S, 5 s by default). Default: yes, unless
        IRIS_MODELS_NO_GPU_PROBE=1. Answers are cached until the boot or the driver files
        change; ``refresh=True`` probes again.
    bandwidth: measure memory read bandwidth (about 0.2 s, cached per boot).
    store_path: where storage is measured; the model store's root by default.
    overrides: field paths to values (``{"memory.total_bytes": 8 << 30}``), applied after
        those in IRIS_MODELS_DEVICE_OVERRIDES.
    """
    from . import _host, _soc  # _gpu and _bandwidth only when asked for: imports cost time

    if gpu is None:
        gpu = os.environ.get(ENV_NO_GPU, "") not in ("1", "true", "yes")
    all_overrides = {**_overrides.from_environment(), **(overrides or {})}

    properties = _soc.read_android_properties()
    cpuinfo = _host.read_cpuinfo()  # read once: both the CPU brand and the SoC use it
    facts: dict[str, Any] = {
        "schema": 1,
        "name": "this-device",
        "description": "probed on this machine",
        "os": _host.os_facts(properties),
        "cpu": _host.cpu_facts(cpuinfo=cpuinfo),
        "memory": _host.memory_facts(),
        "storage": _host.storage_facts(store_root(store_path)),
        "soc": _host.soc_facts(properties, cpuinfo=cpuinfo),
        "metal": _host.metal_facts(),
        "npus": _host.npu_facts(),
    }
    if gpu:
        from . import _gpu

        reports = _gpu.probe(refresh=refresh)
        facts["vulkan"] = _vulkan_facts(reports["vulkan"])
        facts["opencl"] = _opencl_facts(reports["opencl"])
        facts["cuda"] = _cuda_facts(reports["cuda"])
    if bandwidth:
        from . import _bandwidth

        threads = facts["cpu"]["physical_cores"] or facts["cpu"]["logical_cores"]
        measured = _bandwidth.measure(threads, facts["memory"]["available_bytes"], refresh=refresh)
        facts["memory"]["bandwidth_bytes_per_s"] = round(measured["read_bytes_per_s"])
        facts["memory"]["bandwidth_source"] = "measured"
    return _build(facts, all_overrides)


_DERIVED_KEYS = ("backends", "device_class", "device_class_reasons")


def _build(facts: dict[str, Any], overrides: Mapping[str, Any]) -> DeviceProfile:
    """A profile from facts with `overrides` applied and recorded. Where an override names a
    field the facts left out (a probe without GPUs, a file that omits an optional field), the
    facts are first completed with every field's default."""
    prior = facts.get("overrides") or {}
    if not isinstance(prior, dict):
        message = "overrides: expected an object of field paths to values"
        raise DeviceProfileError(message)
    recorded = {**prior, **overrides}
    if not overrides:
        return DeviceProfile.from_dict({**facts, "overrides": recorded})
    raw = {key: value for key, value in facts.items() if key != "overrides"}
    try:
        # Applied to the facts as given first, so an override can also repair a bad field.
        complete = _overrides.apply(raw, overrides)
    except DeviceProfileError:
        complete = DeviceProfile.from_dict({**raw, "overrides": {}}).to_dict()
        for key in (*_DERIVED_KEYS, "overrides"):
            complete.pop(key, None)
        complete = _overrides.apply(complete, overrides)
    complete["overrides"] = recorded
    return DeviceProfile.from_dict(complete)


def _none_if_empty(value: Any) -> Any:
    return value if value not in ("", None) else None


def _vulkan_facts(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": report["status"],
        "detail": report.get("detail", ""),
        "library": _none_if_empty(report.get("library")),
        "instance_version": _none_if_empty(report.get("instance_version")),
        "devices": [
            {**device, **{k: _none_if_empty(device[k]) for k in ("driver_name", "driver_info")}}
            for device in report.get("devices", [])
        ],
    }


def _opencl_facts(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": report["status"],
        "detail": report.get("detail", ""),
        "library": _none_if_empty(report.get("library")),
        "platforms": report.get("platforms", []),
    }


def _cuda_facts(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "status": report["status"],
        "detail": report.get("detail", ""),
        "library": _none_if_empty(report.get("library")),
        "driver_version": _none_if_empty(report.get("driver_version")),
        "devices": report.get("devices", []),
    }


def shipped_profiles() -> list[str]:
    """The names of the profiles that ship with iris-models."""
    folder = resources.files(__package__) / "profiles"
    return sorted(
        entry.name.removesuffix(".json")
        for entry in folder.iterdir()
        if entry.name.endswith(".json")
    )


def load_profile(
    name_or_path: str | os.PathLike[str], *, overrides: Mapping[str, Any] | None = None
) -> DeviceProfile:
    """A profile from a JSON file, or a shipped profile by name (see :func:`shipped_profiles`),
    with `overrides` applied."""
    text, source = _profile_text(name_or_path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        message = f"{source}: not valid JSON ({error})"
        raise DeviceProfileError(message) from None
    try:
        if not isinstance(data, dict):
            message = f"a device profile must be a JSON object, got {type(data).__name__}"
            raise DeviceProfileError(message)
        return _build(data, overrides or {})
    except DeviceProfileError as error:
        message = f"{source}: {error}"
        raise DeviceProfileError(message) from None


def _profile_text(name_or_path: str | os.PathLike[str]) -> tuple[str, str]:
    text_name = os.fspath(name_or_path)
    path = Path(text_name)
    if path.suffix == ".json" or os.sep in text_name or path.exists():
        try:
            return path.read_text(encoding="utf-8"), str(path)
        except OSError as error:
            message = f"cannot read device profile {str(path)!r}: {error.strerror or error}"
            raise DeviceProfileError(message) from None
    if text_name in shipped_profiles():
        shipped = resources.files(__package__) / "profiles" / f"{text_name}.json"
        return shipped.read_text(encoding="utf-8"), f"shipped profile {text_name!r}"
    known = ", ".join(shipped_profiles())
    message = f"no device profile {text_name!r}: not a file, nor a shipped profile ({known})"
    raise DeviceProfileError(message)
