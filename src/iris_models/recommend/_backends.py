"""The catalog's backend names (the original specification's CPU_NEON, OPENCL_ADRENO,
VULKAN_MALI, QNN_HEXAGON, plus CPU_X86, VULKAN, METAL, CUDA and a generic CPU) matched
against the backends a device profile shows as usable, and the specification's choice of
the best backend for a device."""

from __future__ import annotations

from ..device import DeviceClass, DeviceProfile

__all__ = ["PREFERENCE", "available_backends", "optimal_backend"]

# Fastest first, for picking a backend when the optimal one is not among a model's.
PREFERENCE = (
    "CUDA",
    "METAL",
    "QNN_HEXAGON",
    "OPENCL_ADRENO",
    "VULKAN_MALI",
    "VULKAN",
    "CPU_NEON",
    "CPU_X86",
    "CPU",
)

_ARM = ("aarch64", "arm64", "armv7l", "armv8l", "arm")
_X86 = ("x86_64", "amd64", "x86", "i686")


def _cpu_backend(profile: DeviceProfile) -> str:
    architecture = profile.cpu.architecture.lower()
    if architecture in _ARM:
        return "CPU_NEON"
    if architecture in _X86:
        return "CPU_X86"
    return "CPU"


def available_backends(profile: DeviceProfile) -> frozenset[str]:
    """Catalog backend names this device can run, from its usable backends."""
    names = {"CPU", _cpu_backend(profile)}
    usable = {backend.name for backend in profile.usable_backends}
    if "opencl" in usable:
        names.add("OPENCL_ADRENO")  # the profile calls OpenCL usable only where ggml-opencl runs
    if "vulkan" in usable:
        names.update(("VULKAN", "VULKAN_MALI"))  # the specification's VULKAN_MALI: any Vulkan GPU
    if "qnn" in usable:
        names.add("QNN_HEXAGON")
    if "metal" in usable:
        names.add("METAL")
    if "cuda" in usable:
        names.add("CUDA")
    return frozenset(names)


def optimal_backend(profile: DeviceProfile) -> str:
    """The specification's best backend for the device (by SoC vendor and class), extended
    to Apple silicon and CUDA, falling back to the CPU where the device cannot run it."""
    vendor = (profile.soc.vendor or "").lower()
    device_class = profile.device_class
    high = device_class in (DeviceClass.HIGH_END, DeviceClass.FLAGSHIP)
    choice = _cpu_backend(profile)
    if vendor == "qualcomm":
        if device_class is DeviceClass.FLAGSHIP:
            choice = "QNN_HEXAGON"
        elif device_class is DeviceClass.HIGH_END:
            choice = "OPENCL_ADRENO"
    elif vendor in ("samsung", "google") and high:
        choice = "VULKAN_MALI"
    elif vendor == "apple" or profile.metal.available:
        choice = "METAL"
    elif any(backend.name == "cuda" for backend in profile.usable_backends):
        choice = "CUDA"
    return choice if choice in available_backends(profile) else _cpu_backend(profile)
