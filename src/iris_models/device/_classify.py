"""What a profile's facts imply: the CPU's ISA level, the usable backends, the device class.

The device class rule, in full (documented in the README; each step is tested):

1. RAM sets the ceiling, by the nominal size the installed memory is sold as. Kernels keep
   5 to 15 % for firmware and carve-outs, so a total is taken to be nominal size N when it
   is at least 0.85 x N GiB:
   under 6 GiB nominal: BUDGET; 6 GiB: MID_RANGE; 8 GiB: HIGH_END; 12 GiB or more: FLAGSHIP.
2. Fewer than 4 logical cores: at most BUDGET.
3. Without the CPU's fast int8 paths, at most MID_RANGE: on ARM, the dot-product (dotprod)
   and int8 matrix-multiply (i8mm, Armv8.6-A) extensions that llama.cpp's quantised and
   repacked Q4_0/Q8_0 kernels use; on x86, AVX2.
4. No usable accelerator (a GPU that llama.cpp's Vulkan, OpenCL, CUDA or Metal backend
   accepts, or a Hexagon NPU): at most HIGH_END.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._profile import Backend, CPUInfo, DeviceClass, DeviceProfile

GIB = 1 << 30
# Fraction of the nominal RAM size a device reports at least (see rule 1).
REPORTED_RAM_FRACTION = 0.85
RAM_TIERS_GIB = ((12, "FLAGSHIP"), (8, "HIGH_END"), (6, "MID_RANGE"))
MIN_CORES_ABOVE_BUDGET = 4

_X86_V2 = ("sse3", "ssse3", "sse4.1", "sse4.2")
_X86_V3 = ("avx", "avx2", "bmi2", "f16c", "fma")
_X86_V4 = ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")
_ARM_EXTENSIONS = ("dotprod", "fp16", "i8mm", "bf16", "sve", "sve2", "sme")


def isa_level(cpu: CPUInfo) -> str:
    """The CPU's instruction-set level: x86-64 psABI levels (from the features probed), or
    the ARM base architecture with the extensions llama.cpp's kernels use."""
    if cpu.architecture in ("x86_64", "x86"):
        level = "x86-64"
        for name, required in (("-v2", _X86_V2), ("-v3", _X86_V3), ("-v4", _X86_V4)):
            if not all(cpu.has(feature) for feature in required):
                break
            level = f"x86-64{name}"
        return level
    if cpu.architecture in ("aarch64", "arm64"):
        extensions = "".join(f"+{ext}" for ext in _ARM_EXTENSIONS if cpu.has(ext))
        return f"armv8-a{extensions}"
    if cpu.architecture == "arm":
        return "armv7-a+neon" if cpu.has("neon") else "armv7-a"
    return cpu.architecture


def has_fast_int8(cpu: CPUInfo) -> bool:
    if cpu.architecture in ("aarch64", "arm64"):
        return cpu.has("dotprod") and cpu.has("i8mm")
    if cpu.architecture in ("x86_64", "x86"):
        return cpu.has("avx2")
    return False


def _version_at_least(text: str | None, major: int, minor: int) -> bool:
    match = re.search(r"(\d+)\.(\d+)", text or "")
    if match is None:
        return False
    return (int(match.group(1)), int(match.group(2))) >= (major, minor)


def derive_backends(profile: DeviceProfile) -> tuple[Backend, ...]:
    """Every compute backend the facts show, usable or not, each with its reason."""
    from ._profile import Backend, ProbeStatus

    backends = [
        Backend(
            "cpu",
            usable=True,
            device=isa_level(profile.cpu),
            reason=f"{profile.cpu.logical_cores} logical cores",
        )
    ]
    for device in profile.vulkan.devices:
        if device.device_type not in ("integrated", "discrete"):
            usable, reason = False, f"a {device.device_type} device, not a GPU"
        elif device.api_version is None:
            usable, reason = False, "Vulkan version unknown; llama.cpp needs 1.2"
        elif not _version_at_least(device.api_version, 1, 2):
            usable, reason = False, f"Vulkan {device.api_version}; llama.cpp needs 1.2"
        elif device.storage_buffer_16bit is False:
            usable, reason = False, "no 16-bit storage buffers, which llama.cpp needs"
        else:
            usable, reason = True, f"Vulkan {device.api_version}"
        backends.append(Backend("vulkan", usable, device.name, reason))
    for cl_device in profile.opencl.devices:
        label = f"{cl_device.name} {cl_device.version or ''}"
        if cl_device.device_type != "gpu":
            usable, reason = False, f"a {cl_device.device_type} device, not a GPU"
        elif "Adreno" not in label and "Qualcomm" not in label and "Intel" not in label:
            usable, reason = False, "llama.cpp's OpenCL backend supports Adreno and Intel GPUs"
        elif cl_device.extensions and "cl_khr_fp16" not in cl_device.extensions:
            usable, reason = False, "no cl_khr_fp16"
        else:
            usable, reason = True, cl_device.opencl_c_version or cl_device.version or "OpenCL"
        backends.append(Backend("opencl", usable, cl_device.name, reason))
    for cuda_device in profile.cuda.devices:
        usable = _version_at_least(cuda_device.compute_capability, 5, 0)
        reason = f"compute capability {cuda_device.compute_capability}"
        backends.append(Backend("cuda", usable, cuda_device.name, reason))
    if profile.metal.available:
        apple_silicon = profile.cpu.architecture in ("aarch64", "arm64")
        reason = "Apple silicon" if apple_silicon else "llama.cpp disables Metal on Intel Macs"
        backends.append(Backend("metal", apple_silicon, profile.metal.family or "", reason))
    for npu in profile.npus:
        if npu.runtime in ("qnn", "hexagon"):
            backends.append(
                Backend("qnn", True, npu.name or "Hexagon", f"signs: {', '.join(npu.evidence)}")
            )
    for api, info in (
        ("vulkan", profile.vulkan),
        ("opencl", profile.opencl),
        ("cuda", profile.cuda),
    ):
        failed = info.status in (ProbeStatus.CRASHED, ProbeStatus.TIMED_OUT, ProbeStatus.ERROR)
        if failed and not any(backend.name == api for backend in backends):
            backends.append(Backend(api, False, "", f"probe {info.status.value}: {info.detail}"))
    return tuple(backends)


def derive_device_class(
    profile: DeviceProfile, backends: tuple[Backend, ...]
) -> tuple[DeviceClass, tuple[str, ...]]:
    """The device class by the rule in this module's docstring, with the reason for each
    step that decided it."""
    from ._profile import DeviceClass

    total_gib = profile.memory.total_bytes / GIB
    device_class = DeviceClass.BUDGET
    reasons = [f"{total_gib:.1f} GiB RAM: under 6 GiB nominal"]
    for nominal_gib, name in RAM_TIERS_GIB:
        if profile.memory.total_bytes >= REPORTED_RAM_FRACTION * nominal_gib * GIB:
            device_class = DeviceClass(name)
            reasons = [f"{total_gib:.1f} GiB RAM: {nominal_gib} GiB nominal or more"]
            break
    caps: list[tuple[DeviceClass, str]] = []
    if profile.cpu.logical_cores < MIN_CORES_ABOVE_BUDGET:
        cores = profile.cpu.logical_cores
        caps.append((DeviceClass.BUDGET, f"{cores} logical cores (fewer than 4)"))
    if not has_fast_int8(profile.cpu):
        wanted = "AVX2" if profile.cpu.architecture in ("x86_64", "x86") else "dotprod and i8mm"
        caps.append((DeviceClass.MID_RANGE, f"no {wanted} on the CPU"))
    if not any(backend.usable and backend.name != "cpu" for backend in backends):
        caps.append((DeviceClass.HIGH_END, "no usable GPU or NPU"))
    for cap, reason in caps:
        if device_class.rank > cap.rank:
            device_class = cap
            reasons.append(f"at most {cap.value}: {reason}")
    return device_class, tuple(reasons)
