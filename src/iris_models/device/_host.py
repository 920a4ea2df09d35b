"""Facts about this machine that need no GPU driver: OS, CPU (the C++ probe), memory, storage,
the SoC, Metal, and signs of NPU runtimes. Cheap enough to run at every probe (a few
milliseconds); psutil is imported only where the kernel's own files are not there."""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from . import _soc

# Where Qualcomm's Hexagon runtimes live on Android devices and in the QNN SDK.
_QNN_LIBRARIES = ("libQnnHtp.so", "libQnnSystem.so", "libQnnCpu.so")
_HEXAGON_FASTRPC = ("libcdsprpc.so",)
_VENDOR_LIBRARY_DIRS = ("/vendor/lib64", "/system/lib64", "/odm/lib64", "/vendor/lib")


def os_facts(android_properties: dict[str, str]) -> dict[str, Any]:
    if sys.platform == "win32":
        import platform  # only here: importing it costs milliseconds on every probe

        release = platform.release() or None
        return {
            "system": "windows",
            "release": release,
            "android_api_level": None,
            "machine": platform.machine(),
        }
    uname = os.uname()
    if android_properties or hasattr(sys, "getandroidapilevel"):
        level = android_properties.get("ro.build.version.sdk", "")
        if not level and hasattr(sys, "getandroidapilevel"):
            level = str(sys.getandroidapilevel())
        return {
            "system": "android",
            "release": android_properties.get("ro.build.version.release") or None,
            "android_api_level": int(level) if level.isdigit() else None,
            "machine": uname.machine,
        }
    system = "macos" if sys.platform == "darwin" else uname.sysname.lower()
    release = uname.release
    if system == "macos":
        import platform

        release = platform.mac_ver()[0]
    return {
        "system": system,
        "release": release or None,
        "android_api_level": None,
        "machine": uname.machine,
    }


def read_cpuinfo(path: str = "/proc/cpuinfo") -> dict[str, Any]:
    """/proc/cpuinfo parsed by the core; empty fields where it cannot be read (macOS)."""
    from .. import _core

    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    return dict(_core.parse_cpuinfo(text))


def cpu_facts(
    sysfs_cpu_root: str = "/sys/devices/system/cpu", cpuinfo: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`cpuinfo`, from :func:`read_cpuinfo`, is read here when not given."""
    from .. import _core

    features = _core.probe_cpu_features()
    topology = _core.probe_core_topology(sysfs_cpu_root)
    logical = topology["logical_cores"]
    physical = topology["physical_cores"]
    if not topology["from_sysfs"]:  # no sysfs (macOS, some containers): ask the OS instead
        import psutil

        logical = psutil.cpu_count(logical=True) or logical or 1
        physical = psutil.cpu_count(logical=False) or logical
    return {
        "architecture": features["architecture"],
        "vendor": features["vendor"],
        "brand": features["brand"] or str((cpuinfo or read_cpuinfo())["model_name"]),
        "features": features["features"],
        "sve_vector_bits": features["sve_vector_bits"],
        "logical_cores": logical,
        "physical_cores": physical or logical,
        "clusters": topology["clusters"],
    }


def memory_facts(meminfo_path: str = "/proc/meminfo") -> dict[str, Any]:
    """Total and available RAM. On Linux and Android straight from /proc/meminfo (what psutil
    reads there too; importing psutil alone costs most of the CPU probe's 20 ms budget);
    elsewhere through psutil."""
    try:
        text = Path(meminfo_path).read_text(encoding="ascii", errors="replace")
    except OSError:
        text = ""
    fields = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            fields[name] = int(parts[0]) * (1024 if parts[1:] == ["kB"] else 1)
    if "MemTotal" in fields and "MemAvailable" in fields:
        return {"total_bytes": fields["MemTotal"], "available_bytes": fields["MemAvailable"]}
    import psutil

    memory = psutil.virtual_memory()
    return {"total_bytes": memory.total, "available_bytes": memory.available}


def storage_facts(store_path: Path) -> dict[str, Any]:
    """Free and total bytes of the file system the store is (or will be) on."""
    existing = store_path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent  # the store may not exist yet: measure where it would go
    try:
        usage = shutil.disk_usage(existing)
    except OSError:
        return {"path": str(store_path), "total_bytes": None, "free_bytes": None}
    return {"path": str(store_path), "total_bytes": usage.total, "free_bytes": usage.free}


def soc_facts(
    android_properties: dict[str, str],
    cpuinfo_path: str = "/proc/cpuinfo",
    soc0_root: str = "/sys/devices/soc0",
    device_tree_root: str = "/proc/device-tree",
    cpuinfo: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`cpuinfo`, from :func:`read_cpuinfo`, replaces reading `cpuinfo_path` when given."""
    from .. import _core

    hardware = str((cpuinfo or read_cpuinfo(cpuinfo_path))["hardware"])
    soc0 = _core.read_soc_files(soc0_root)
    compatible = ""
    with contextlib.suppress(OSError):
        compatible = Path(device_tree_root, "compatible").read_bytes().decode(errors="replace")
    facts = _soc.identify(android_properties, hardware, soc0, compatible)
    if facts.vendor is None and sys.platform == "darwin" and os.uname().machine == "arm64":
        facts = _soc.SoCFacts("apple", None, None, None)
    return {
        "vendor": facts.vendor,
        "model": facts.model,
        "name": None,
        "board_platform": facts.board_platform,
        "hardware": facts.hardware,
    }


def metal_facts() -> dict[str, Any]:
    available = (
        sys.platform == "darwin" and Path("/System/Library/Frameworks/Metal.framework").exists()
    )
    return {"available": available, "family": None}


def npu_facts(search_dirs: list[str] | None = None) -> list[dict[str, Any]]:
    """Signs of Qualcomm's NPU runtimes, found by file name only (nothing is loaded)."""
    if search_dirs is None:
        search_dirs = list(_VENDOR_LIBRARY_DIRS)
        search_dirs += os.environ.get("LD_LIBRARY_PATH", "").split(os.pathsep)
        search_dirs += os.environ.get("ADSP_LIBRARY_PATH", "").split(";")
        sdk = os.environ.get("QNN_SDK_ROOT")
        if sdk:
            search_dirs += [str(path) for path in Path(sdk, "lib").glob("*")]
    qnn: list[str] = []
    fastrpc: list[str] = []
    for directory in dict.fromkeys(filter(None, search_dirs)):
        qnn += [str(Path(directory, n)) for n in _QNN_LIBRARIES if Path(directory, n).is_file()]
        fastrpc += [
            str(Path(directory, n)) for n in _HEXAGON_FASTRPC if Path(directory, n).is_file()
        ]
    if qnn:
        return [{"runtime": "qnn", "name": "Qualcomm Hexagon (QNN)", "evidence": qnn + fastrpc}]
    if fastrpc:
        return [{"runtime": "hexagon", "name": "Qualcomm Hexagon DSP", "evidence": fastrpc}]
    return []
