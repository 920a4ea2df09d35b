"""The device profile: shipped profiles, the device-class rule step by step, the ISA level,
overrides (code, environment), loading bad profiles, probing this machine, the bandwidth
measurement and its cache. GPU probing itself is tested in test_device_gpu*.py."""

from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import re
import shutil
import sys
from decimal import Decimal
from fractions import Fraction
from importlib import resources
from pathlib import Path
from typing import Any

import psutil
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from iris_models import _core, device
from iris_models.device import (
    CoreCluster,
    CPUInfo,
    CUDADevice,
    CUDAInfo,
    DeviceClass,
    DeviceProfile,
    DeviceProfileError,
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
    _bandwidth,
    _cache,
    _gpu,
    _host,
    _overrides,
    isa_level,
)

GIB = 1 << 30
DiskUsage = collections.namedtuple("DiskUsage", "total used free")
SHIPPED = {
    "apple-silicon-laptop": DeviceClass.FLAGSHIP,
    "budget-android-phone": DeviceClass.BUDGET,
    "gpu-workstation": DeviceClass.FLAGSHIP,
    "midrange-mali-phone": DeviceClass.MID_RANGE,
    "raspberry-pi-5": DeviceClass.MID_RANGE,
    "snapdragon-flagship-phone": DeviceClass.FLAGSHIP,
    "x86-laptop": DeviceClass.HIGH_END,
}
# What decides each shipped profile's class: the RAM ceiling, or the cap that lowered it.
DECIDING_REASON = {
    "apple-silicon-laptop": "12 GiB nominal or more",
    "budget-android-phone": "under 6 GiB nominal",
    "gpu-workstation": "12 GiB nominal or more",
    "midrange-mali-phone": "at most MID_RANGE: no dotprod and i8mm on the CPU",
    "raspberry-pi-5": "at most MID_RANGE: no dotprod and i8mm on the CPU",
    "snapdragon-flagship-phone": "12 GiB nominal or more",
    "x86-laptop": "at most HIGH_END: no usable GPU or NPU",
}
USABLE_BACKENDS = {
    "apple-silicon-laptop": {"cpu", "metal"},
    "budget-android-phone": {"cpu"},
    "gpu-workstation": {"cpu", "cuda"},
    "midrange-mali-phone": {"cpu"},
    "raspberry-pi-5": {"cpu", "vulkan"},
    "snapdragon-flagship-phone": {"cpu", "opencl", "qnn"},
    "x86-laptop": {"cpu"},
}


@pytest.fixture(autouse=True)
def _no_profile_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own profile or overrides must not leak into these tests."""
    monkeypatch.delenv(device.ENV_PROFILE, raising=False)
    monkeypatch.delenv(_overrides.ENV_OVERRIDES, raising=False)


def shipped_data(name: str) -> dict[str, Any]:
    text = (resources.files("iris_models.device") / "profiles" / f"{name}.json").read_text(
        encoding="utf-8"
    )
    data: dict[str, Any] = json.loads(text)
    return data


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def get_path(data: Any, path: str) -> Any:
    """The value at an override-style path (``cpu.clusters[0].cpus[1]``) in JSON data."""
    for part in path.split("."):
        name, _, indexes = part.partition("[")
        data = data[name]
        for index in re.findall(r"\d+", indexes):
            data = data[int(index)]
    return data


def ram_threshold(nominal_gib: int) -> int:
    """The fewest bytes that count as `nominal_gib` GiB nominal: 0.85 x N GiB, rounded up."""
    return math.ceil(Fraction(85, 100) * nominal_gib * GIB)


GOOD_VULKAN = VulkanDevice(
    name="Adreno (TM) 740",
    vendor_id=0x5143,
    device_type="integrated",
    api_version="1.3.128",
    storage_buffer_16bit=True,
)


def uncapped(**changes: Any) -> DeviceProfile:
    """A profile no cap applies to (8 ARM cores with dotprod and i8mm, a usable Vulkan GPU),
    so its class is what its RAM says; `changes` replace fields."""
    base = DeviceProfile(
        name="synthetic",
        os=OSInfo(system="android", machine="aarch64"),
        cpu=CPUInfo(
            architecture="aarch64",
            features=("neon", "dotprod", "i8mm"),
            logical_cores=8,
            physical_cores=8,
        ),
        memory=MemoryInfo(total_bytes=16 * GIB),
        vulkan=VulkanInfo(status=ProbeStatus.OK, devices=(GOOD_VULKAN,)),
    )
    return dataclasses.replace(base, **changes)


def without_accelerator(**changes: Any) -> DeviceProfile:
    return uncapped(**{"vulkan": VulkanInfo(), **changes})


# ---------------------------------------------------------------------------------------------
# Shipped profiles


def test_the_seven_profiles_ship() -> None:
    assert device.shipped_profiles() == sorted(SHIPPED)


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_profile_loads_names_sources_and_round_trips(name: str) -> None:
    profile = device.load_profile(name)
    assert profile.name == name
    assert profile.schema == 1
    assert profile.sources
    assert all(re.match(r"https?://\S+$", source.url) for source in profile.sources)
    again = DeviceProfile.from_json(profile.to_json())
    assert again == profile
    assert again.backends == profile.backends
    assert again.device_class == profile.device_class
    assert again.device_class_reasons == profile.device_class_reasons
    assert json.loads(profile.to_json()) == profile.to_dict()


@pytest.mark.parametrize(("name", "expected"), sorted(SHIPPED.items()))
def test_shipped_profile_device_class_follows_the_rule(name: str, expected: DeviceClass) -> None:
    profile = device.load_profile(name)
    assert profile.device_class is expected
    assert DECIDING_REASON[name] in profile.device_class_reasons[-1]


@pytest.mark.parametrize(("name", "usable"), sorted(USABLE_BACKENDS.items()))
def test_shipped_profile_usable_backends(name: str, usable: set[str]) -> None:
    profile = device.load_profile(name)
    assert {backend.name for backend in profile.usable_backends} == usable
    cpu = profile.backends[0]
    assert cpu.name == "cpu"
    assert cpu.device == isa_level(profile.cpu)


# ---------------------------------------------------------------------------------------------
# The device-class rule, step by step (see iris_models.device._classify's docstring)


@pytest.mark.parametrize(
    ("nominal_gib", "at", "below"),
    [
        (6, DeviceClass.MID_RANGE, DeviceClass.BUDGET),
        (8, DeviceClass.HIGH_END, DeviceClass.MID_RANGE),
        (12, DeviceClass.FLAGSHIP, DeviceClass.HIGH_END),
    ],
)
def test_ram_counts_as_nominal_from_085_of_it(
    nominal_gib: int, at: DeviceClass, below: DeviceClass
) -> None:
    threshold = ram_threshold(nominal_gib)
    at_threshold = uncapped(memory=MemoryInfo(total_bytes=threshold))
    assert at_threshold.device_class is at
    assert at_threshold.device_class_reasons == (
        f"{threshold / GIB:.1f} GiB RAM: {nominal_gib} GiB nominal or more",
    )
    one_byte_less = uncapped(memory=MemoryInfo(total_bytes=threshold - 1))
    assert one_byte_less.device_class is below


@pytest.mark.parametrize(
    ("total_bytes", "expected"),
    [
        (0, DeviceClass.BUDGET),
        (4 * GIB, DeviceClass.BUDGET),
        (6 * GIB, DeviceClass.MID_RANGE),
        (8 * GIB, DeviceClass.HIGH_END),
        (12 * GIB, DeviceClass.FLAGSHIP),
        (1 << 40, DeviceClass.FLAGSHIP),
    ],
)
def test_ram_alone_sets_the_class_when_nothing_caps_it(
    total_bytes: int, expected: DeviceClass
) -> None:
    assert uncapped(memory=MemoryInfo(total_bytes=total_bytes)).device_class is expected


def test_fewer_than_four_logical_cores_cap_at_budget() -> None:
    three = uncapped(cpu=dataclasses.replace(uncapped().cpu, logical_cores=3, physical_cores=3))
    assert three.device_class is DeviceClass.BUDGET
    assert three.device_class_reasons[-1] == "at most BUDGET: 3 logical cores (fewer than 4)"
    four = uncapped(cpu=dataclasses.replace(uncapped().cpu, logical_cores=4, physical_cores=4))
    assert four.device_class is DeviceClass.FLAGSHIP


@pytest.mark.parametrize(
    ("architecture", "features", "expected"),
    [
        ("aarch64", ("neon", "dotprod", "i8mm"), DeviceClass.FLAGSHIP),
        ("arm64", ("neon", "dotprod", "i8mm"), DeviceClass.FLAGSHIP),
        ("aarch64", ("neon", "dotprod"), DeviceClass.MID_RANGE),
        ("aarch64", ("neon", "i8mm"), DeviceClass.MID_RANGE),
        ("aarch64", (), DeviceClass.MID_RANGE),
        ("x86_64", ("avx", "avx2", "fma"), DeviceClass.FLAGSHIP),
        ("x86_64", ("sse4.2", "avx", "fma", "avx512f"), DeviceClass.MID_RANGE),
        ("x86", ("avx2",), DeviceClass.FLAGSHIP),
        ("riscv64", ("v",), DeviceClass.MID_RANGE),
    ],
)
def test_cpu_without_fast_int8_caps_at_mid_range(
    architecture: str, features: tuple[str, ...], expected: DeviceClass
) -> None:
    cpu = CPUInfo(architecture=architecture, features=features, logical_cores=8)
    profile = uncapped(cpu=cpu)
    assert profile.device_class is expected
    if expected is DeviceClass.MID_RANGE:
        wanted = "AVX2" if architecture.startswith("x86") else "dotprod and i8mm"
        assert profile.device_class_reasons[-1] == f"at most MID_RANGE: no {wanted} on the CPU"


def test_no_usable_accelerator_caps_at_high_end() -> None:
    profile = without_accelerator()
    assert profile.device_class is DeviceClass.HIGH_END
    assert profile.device_class_reasons[-1] == "at most HIGH_END: no usable GPU or NPU"
    assert [backend.name for backend in profile.usable_backends] == ["cpu"]


def test_caps_never_raise_the_class_and_the_lowest_cap_wins() -> None:
    six_gib = without_accelerator(memory=MemoryInfo(total_bytes=6 * GIB))
    assert six_gib.device_class is DeviceClass.MID_RANGE
    assert len(six_gib.device_class_reasons) == 1  # the HIGH_END cap did not apply
    weak = without_accelerator(
        cpu=CPUInfo(architecture="aarch64", features=("neon",), logical_cores=2)
    )
    assert weak.device_class is DeviceClass.BUDGET
    assert weak.device_class_reasons[-1] == "at most BUDGET: 2 logical cores (fewer than 4)"
    assert not any("MID_RANGE" in reason for reason in weak.device_class_reasons)


def vulkan(**fields: Any) -> dict[str, Any]:
    return {"vulkan": VulkanInfo(status=ProbeStatus.OK, devices=(VulkanDevice(**fields),))}


def opencl(name: str, *, device_type: str = "gpu", extensions: tuple[str, ...] = ()) -> Any:
    cl_device = OpenCLDevice(
        name=name, version="OpenCL 3.0", device_type=device_type, extensions=extensions
    )
    platform = OpenCLPlatform(name="platform", devices=(cl_device,))
    return {"opencl": OpenCLInfo(status=ProbeStatus.OK, platforms=(platform,))}


def cuda(compute_capability: str) -> dict[str, Any]:
    card = CUDADevice(name="card", compute_capability=compute_capability, memory_bytes=8 * GIB)
    return {"cuda": CUDAInfo(status=ProbeStatus.OK, devices=(card,))}


AVX2_CPU = CPUInfo(architecture="x86_64", features=("avx", "avx2", "fma"), logical_cores=8)
ACCELERATORS = [
    # Vulkan: an integrated or discrete GPU with Vulkan 1.2 and 16-bit storage buffers
    pytest.param(
        "vulkan",
        vulkan(name="gpu", vendor_id=1, device_type="integrated", api_version="1.2.0"),
        True,
        id="vulkan-integrated-1.2-16bit-unknown",
    ),
    pytest.param(
        "vulkan",
        vulkan(
            name="gpu",
            vendor_id=1,
            device_type="discrete",
            api_version="1.3.280",
            storage_buffer_16bit=True,
        ),
        True,
        id="vulkan-discrete-1.3",
    ),
    pytest.param(
        "vulkan",
        vulkan(name="llvmpipe", vendor_id=1, device_type="cpu", api_version="1.3.255"),
        False,
        id="vulkan-cpu-device",
    ),
    pytest.param(
        "vulkan",
        vulkan(name="gpu", vendor_id=1, device_type="virtual", api_version="1.3.255"),
        False,
        id="vulkan-virtual-device",
    ),
    pytest.param(
        "vulkan",
        vulkan(name="gpu", vendor_id=1, device_type="integrated", api_version="1.1.128"),
        False,
        id="vulkan-1.1",
    ),
    pytest.param(
        "vulkan",
        vulkan(name="gpu", vendor_id=1, device_type="integrated"),
        False,
        id="vulkan-version-unknown",
    ),
    pytest.param(
        "vulkan",
        vulkan(
            name="gpu",
            vendor_id=1,
            device_type="integrated",
            api_version="1.3.0",
            storage_buffer_16bit=False,
        ),
        False,
        id="vulkan-no-16bit-storage",
    ),
    # OpenCL: Adreno or Intel GPUs with cl_khr_fp16
    pytest.param(
        "opencl",
        opencl("QUALCOMM Adreno(TM) 750", extensions=("cl_khr_fp16",)),
        True,
        id="opencl-adreno-fp16",
    ),
    pytest.param(
        "opencl",
        opencl("Intel(R) UHD Graphics 770", extensions=("cl_khr_fp16", "cl_khr_subgroups")),
        True,
        id="opencl-intel-fp16",
    ),
    pytest.param(
        "opencl",
        opencl("QUALCOMM Adreno(TM) 750", extensions=("cl_khr_subgroups",)),
        False,
        id="opencl-adreno-without-fp16",
    ),
    pytest.param(
        "opencl", opencl("Mali-G78", extensions=("cl_khr_fp16",)), False, id="opencl-mali"
    ),
    pytest.param(
        "opencl",
        opencl("pthread-haswell-Intel(R) Core", device_type="cpu", extensions=("cl_khr_fp16",)),
        False,
        id="opencl-cpu-device",
    ),
    # CUDA: compute capability 5.0 or newer
    pytest.param("cuda", cuda("5.0"), True, id="cuda-5.0"),
    pytest.param("cuda", cuda("12.0"), True, id="cuda-12.0"),
    pytest.param("cuda", cuda("3.7"), False, id="cuda-3.7"),
    # Metal: Apple silicon only
    pytest.param("metal", {"metal": MetalInfo(available=True)}, True, id="metal-arm64"),
    pytest.param(
        "metal",
        {"metal": MetalInfo(available=True), "cpu": AVX2_CPU},
        False,
        id="metal-intel-mac",
    ),
    # QNN: signs of Qualcomm's NPU runtimes
    pytest.param("qnn", {"npus": (NPUInfo("qnn", evidence=("libQnnHtp.so",)),)}, True, id="qnn"),
    pytest.param("qnn", {"npus": (NPUInfo("hexagon"),)}, True, id="hexagon-fastrpc"),
]


@pytest.mark.parametrize(("backend", "changes", "usable"), ACCELERATORS)
def test_each_usable_accelerator_lifts_the_high_end_cap(
    backend: str, changes: dict[str, Any], usable: bool
) -> None:
    profile = without_accelerator(**changes)
    found = [b for b in profile.backends if b.name == backend]
    assert len(found) == 1
    assert found[0].usable is usable
    assert found[0].reason
    expected = DeviceClass.FLAGSHIP if usable else DeviceClass.HIGH_END
    assert profile.device_class is expected


def test_an_npu_runtime_that_is_not_qualcomms_is_no_backend() -> None:
    profile = without_accelerator(npus=(NPUInfo("xdna", name="Ryzen AI"),))
    assert [backend.name for backend in profile.backends] == ["cpu"]
    assert profile.device_class is DeviceClass.HIGH_END


@pytest.mark.parametrize("forced", list(DeviceClass))
def test_device_class_override_replaces_the_derived_class(forced: DeviceClass) -> None:
    profile = device.load_profile("budget-android-phone", overrides={"device_class": forced.value})
    assert profile.device_class is forced
    assert profile.device_class_reasons == ("set by an override",)
    assert profile.memory.total_bytes == 4 * GIB  # the facts are untouched
    assert DeviceProfile.from_json(profile.to_json()).device_class is forced
    replaced = dataclasses.replace(uncapped(), overrides=(("device_class", forced.value),))
    assert replaced.device_class is forced


def test_invalid_device_class_override_names_the_allowed_values() -> None:
    with pytest.raises(DeviceProfileError, match="device_class") as error:
        device.load_profile("raspberry-pi-5", overrides={"device_class": "ULTRA"})
    for member in DeviceClass:
        assert member.value in str(error.value)
    assert "ULTRA" in str(error.value)


# ---------------------------------------------------------------------------------------------
# ISA level

X86_V2 = ("sse3", "ssse3", "sse4.1", "sse4.2")
X86_V3 = ("avx", "avx2", "bmi2", "f16c", "fma")
X86_V4 = ("avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl")


@pytest.mark.parametrize(
    ("features", "level"),
    [
        ((), "x86-64"),
        (X86_V2[:-1], "x86-64"),
        (X86_V2, "x86-64-v2"),
        (X86_V2 + X86_V3[:-1], "x86-64-v2"),
        (X86_V2 + X86_V3, "x86-64-v3"),
        (X86_V2 + X86_V3 + X86_V4[:-1], "x86-64-v3"),
        (X86_V2 + X86_V3 + X86_V4, "x86-64-v4"),
        (X86_V3 + X86_V4, "x86-64"),  # levels are cumulative: no v2, no v3 or v4
        (X86_V2 + X86_V4, "x86-64-v2"),
    ],
)
@pytest.mark.parametrize("architecture", ["x86_64", "x86"])
def test_x86_isa_level_boundaries(architecture: str, features: tuple[str, ...], level: str) -> None:
    assert isa_level(CPUInfo(architecture=architecture, features=features)) == level


@pytest.mark.parametrize(
    ("architecture", "features", "level"),
    [
        ("aarch64", (), "armv8-a"),
        ("aarch64", ("neon", "sha2"), "armv8-a"),
        ("aarch64", ("neon", "dotprod", "fp16"), "armv8-a+dotprod+fp16"),
        ("aarch64", ("i8mm", "fp16", "dotprod"), "armv8-a+dotprod+fp16+i8mm"),
        (
            "aarch64",
            ("sme", "sve2", "sve", "bf16", "i8mm", "fp16", "dotprod"),
            "armv8-a+dotprod+fp16+i8mm+bf16+sve+sve2+sme",
        ),
        ("arm64", ("dotprod", "i8mm"), "armv8-a+dotprod+i8mm"),
        ("arm", ("neon",), "armv7-a+neon"),
        ("arm", (), "armv7-a"),
        ("riscv64", ("v",), "riscv64"),
    ],
)
def test_arm_and_other_isa_levels(architecture: str, features: tuple[str, ...], level: str) -> None:
    assert isa_level(CPUInfo(architecture=architecture, features=features)) == level


# ---------------------------------------------------------------------------------------------
# Overrides: parsing PATH=VALUE


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("memory.total_bytes=8GiB", 8 * GIB),
        ("memory.total_bytes=512MB", 512_000_000),
        ("memory.total_bytes=1.5GB", 1_500_000_000),
        ("memory.total_bytes=4gib", 4 * GIB),
        ("memory.total_bytes=100 KiB", 102_400),
        ("memory.total_bytes=2TB", 2 * 10**12),
        ("memory.total_bytes=7B", 7),
        ("cpu.logical_cores=8", 8),
        ("metal.available=true", True),
        ("soc.model=null", None),
        ('cpu.features=["neon","dotprod"]', ["neon", "dotprod"]),
        ('soc.model="8GiB"', "8GiB"),  # JSON quoting keeps a size-like string a string
        ("device_class=BUDGET", "BUDGET"),
        ("soc.name=Snapdragon 8 Gen 3", "Snapdragon 8 Gen 3"),
        ("soc.name=a=b", "a=b"),
        ("  memory.total_bytes  =  8GiB  ", 8 * GIB),
    ],
)
def test_parse_assignment_values(text: str, value: Any) -> None:
    path, parsed = _overrides.parse_assignment(text)
    assert path == text.partition("=")[0].strip()
    assert parsed == value
    assert type(parsed) is type(value)


@pytest.mark.parametrize(("text", "value"), [("8.2GB", 8_200_000_000), ("4.1MB", 4_100_000)])
def test_decimal_sizes_are_exact(text: str, value: int) -> None:
    assert _overrides.parse_value(text) == value


@pytest.mark.parametrize("text", ["noequals", "=5", "   =5", ""])
def test_parse_assignment_rejects_text_without_a_path(text: str) -> None:
    with pytest.raises(DeviceProfileError, match="PATH=VALUE"):
        _overrides.parse_assignment(text)


SIZE_UNITS = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}
SIZE_UNITS.update({"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40})


@given(
    amount=st.integers(min_value=0, max_value=10**6),
    unit=st.sampled_from(sorted(SIZE_UNITS)),
    upper=st.booleans(),
    space=st.sampled_from(["", " "]),
)
def test_size_values_are_exact_byte_counts(amount: int, unit: str, upper: bool, space: str) -> None:
    written = unit.upper() if upper else unit
    assert _overrides.parse_value(f"{amount}{space}{written}") == amount * SIZE_UNITS[unit]


@given(
    amount=st.decimals(min_value=0, max_value=10**6, places=3, allow_nan=False),
    unit=st.sampled_from(["kB", "MB", "GB", "TB"]),
)
def test_decimal_amounts_of_decimal_units_are_exact(amount: Decimal, unit: str) -> None:
    assert _overrides.parse_value(f"{amount:f}{unit}") == int(amount * SIZE_UNITS[unit])


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=4),
    max_leaves=10,
)


@given(JSON_VALUES)
def test_json_values_parse_as_json(value: Any) -> None:
    assert _overrides.parse_value(json.dumps(value)) == value


@given(st.text())
def test_text_that_is_neither_json_nor_a_size_stays_text(text: str) -> None:
    assume(_overrides._SIZE.match(text) is None)
    try:
        json.loads(text)
    except ValueError:
        pass
    else:
        assume(False)
    assert _overrides.parse_value(text) == text


# ---------------------------------------------------------------------------------------------
# Overrides: applying them


def leaf_paths(data: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """Every scalar leaf of JSON data with its override-style path."""
    if isinstance(data, dict):
        return [
            leaf
            for key, value in data.items()
            for leaf in leaf_paths(value, f"{prefix}.{key}" if prefix else key)
        ]
    if isinstance(data, list):
        return [
            leaf
            for index, item in enumerate(data)
            for leaf in leaf_paths(item, f"{prefix}[{index}]")
        ]
    return [(prefix, data)]


@st.composite
def shipped_leaf_override(draw: st.DrawFn) -> tuple[str, str, Any]:
    name = draw(st.sampled_from(sorted(SHIPPED)))
    leaves = [
        (path, value)
        for path, value in leaf_paths(shipped_data(name))
        if value is not None and path != "schema" and not path.endswith("status")
    ]
    path, old = draw(st.sampled_from(leaves))
    if isinstance(old, bool):
        new: Any = draw(st.booleans())
    elif isinstance(old, int):
        new = draw(st.integers(min_value=0, max_value=2**63))
    else:
        new = draw(st.text())
    return name, path, new


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
@given(shipped_leaf_override())
def test_any_field_of_a_shipped_profile_can_be_overridden(case: tuple[str, str, Any]) -> None:
    name, path, value = case
    profile = device.load_profile(name, overrides={path: value})
    assert get_path(profile.to_dict(), path) == value
    assert profile.overrides == ((path, value),)
    assert DeviceProfile.from_json(profile.to_json()) == profile


def test_apply_replaces_fields_and_leaves_its_input_alone() -> None:
    facts = shipped_data("raspberry-pi-5")
    before = json.dumps(facts)
    result = _overrides.apply(
        facts,
        {
            "memory.total_bytes": 4 * GIB,
            "cpu.clusters[0].cpus[3]": 9,
            "vulkan.devices[0].api_version": "1.1.0",
            "device_class": "FLAGSHIP",  # derived: recorded by the profile, not a fact
        },
    )
    assert json.dumps(facts) == before
    assert result["memory"]["total_bytes"] == 4 * GIB
    assert result["cpu"]["clusters"][0]["cpus"] == [0, 1, 2, 9]
    assert result["vulkan"]["devices"][0]["api_version"] == "1.1.0"
    assert "device_class" not in result


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("memory.colour", "no field 'colour'"),
        ("colour", "no field 'colour'"),
        ("cpu.clusters[7].cpus", "index 7 is out of range (the list has 2)"),
        ("cpu.features[99]", "index 99 is out of range"),
        ("cpu.clusters[0].cpus[0].x", "no field 'x'"),
        ("cpu.1bad", "'1bad' is not a field name"),
        ("cpu..features", "'' is not a field name"),
    ],
)
def test_apply_errors_name_the_path(path: str, message: str) -> None:
    with pytest.raises(DeviceProfileError) as error:
        _overrides.apply(shipped_data("apple-silicon-laptop"), {path: 1})
    assert f"override {path!r}" in str(error.value)
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("name", "path", "value"),
    [
        ("budget-android-phone", "vulkan.detail", "driver misreports"),
        ("snapdragon-flagship-phone", "opencl.library", "libOpenCL.so"),
        ("raspberry-pi-5", "vulkan.devices[0].extensions", ["VK_KHR_16bit_storage"]),
    ],
)
def test_override_sets_a_field_the_profile_file_leaves_at_its_default(
    name: str, path: str, value: Any
) -> None:
    profile = device.load_profile(name, overrides={path: value})
    assert get_path(profile.to_dict(), path) == value


def test_probe_without_gpus_accepts_a_cuda_override() -> None:
    card = {"name": "RTX 4090", "compute_capability": "8.9", "memory_bytes": 24 * GIB}
    profile = device.probe(gpu=False, bandwidth=False, overrides={"cuda.devices": [card]})
    assert profile.cuda.devices[0].name == "RTX 4090"


def test_env_overrides_apply_to_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(_overrides.ENV_OVERRIDES, json.dumps({"memory.total_bytes": 3 * GIB}))
    profile = device.probe(gpu=False, bandwidth=False)
    assert profile.memory.total_bytes == 3 * GIB
    assert profile.overrides == (("memory.total_bytes", 3 * GIB),)
    assert profile.device_class is DeviceClass.BUDGET


@pytest.mark.parametrize("text", ["", "   "])
def test_empty_env_overrides_are_none(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    monkeypatch.setenv(_overrides.ENV_OVERRIDES, text)
    profile = device.probe(gpu=False, bandwidth=False)
    assert profile.overrides == ()
    assert profile.memory.total_bytes == psutil.virtual_memory().total


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('["memory.total_bytes", 1]', "must be a JSON object"),
        ("8", "must be a JSON object"),
    ],
)
def test_bad_env_overrides_raise_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, text: str, message: str
) -> None:
    monkeypatch.setenv(_overrides.ENV_OVERRIDES, text)
    with pytest.raises(DeviceProfileError, match=_overrides.ENV_OVERRIDES) as error:
        device.probe(gpu=False, bandwidth=False)
    assert message in str(error.value)


def test_argument_overrides_win_over_env_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        _overrides.ENV_OVERRIDES,
        json.dumps({"memory.total_bytes": 3 * GIB, "cpu.logical_cores": 2}),
    )
    profile = device.probe(gpu=False, bandwidth=False, overrides={"memory.total_bytes": 16 * GIB})
    assert profile.memory.total_bytes == 16 * GIB
    assert profile.cpu.logical_cores == 2
    assert dict(profile.overrides) == {"memory.total_bytes": 16 * GIB, "cpu.logical_cores": 2}


def test_env_overrides_apply_to_a_profile_chosen_by_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(device.ENV_PROFILE, "snapdragon-flagship-phone")
    monkeypatch.setenv(_overrides.ENV_OVERRIDES, json.dumps({"memory.total_bytes": 6 * GIB}))
    profile = device.current(overrides={"cpu.logical_cores": 6})
    assert profile.name == "snapdragon-flagship-phone"
    assert profile.memory.total_bytes == 6 * GIB
    assert profile.cpu.logical_cores == 6
    assert profile.device_class is DeviceClass.MID_RANGE


def test_overrides_are_recorded_and_survive_json_and_files(tmp_path: Path) -> None:
    overrides = {"memory.total_bytes": 4 * GIB, "cpu.features": ["neon", "dotprod", "i8mm"]}
    profile = device.load_profile("raspberry-pi-5", overrides=overrides)
    assert profile.overrides == (
        ("memory.total_bytes", 4 * GIB),
        ("cpu.features", ("neon", "dotprod", "i8mm")),
    )
    assert profile.cpu.features == ("neon", "dotprod", "i8mm")
    assert profile.to_dict()["overrides"] == overrides
    again = DeviceProfile.from_json(profile.to_json())
    assert again == profile
    assert again.device_class == profile.device_class == DeviceClass.BUDGET
    profile.save(tmp_path / "pi.json")
    loaded = device.load_profile(tmp_path / "pi.json")
    assert loaded == profile
    # Overriding a saved profile again keeps the earlier record and adds the new one.
    more = device.load_profile(tmp_path / "pi.json", overrides={"memory.total_bytes": 8 * GIB})
    assert more.to_dict()["overrides"] == {**overrides, "memory.total_bytes": 8 * GIB}
    assert more.memory.total_bytes == 8 * GIB


def test_override_of_a_wrong_type_names_the_field() -> None:
    with pytest.raises(DeviceProfileError, match=r"memory\.total_bytes"):
        device.load_profile("raspberry-pi-5", overrides={"memory.total_bytes": "lots"})
    with pytest.raises(DeviceProfileError, match=r"memory\.total_bytes: expected an integer"):
        device.probe(gpu=False, bandwidth=False, overrides={"memory.total_bytes": "lots"})


def test_an_object_override_replaces_a_whole_entry_and_keeps_the_profile_hashable() -> None:
    profile = device.load_profile(
        "raspberry-pi-5", overrides={"metal": {"available": True, "family": "Apple9"}}
    )
    assert profile.metal.family == "Apple9"
    assert hash(profile) == hash(device.DeviceProfile.from_json(profile.to_json()))


# ---------------------------------------------------------------------------------------------
# Loading bad profiles


def test_invalid_json_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{"schema": 1,', encoding="utf-8")
    with pytest.raises(DeviceProfileError, match="not valid JSON") as error:
        device.load_profile(path)
    assert str(path) in str(error.value)
    with pytest.raises(DeviceProfileError, match="not valid JSON"):
        DeviceProfile.from_json("{")


def test_json_array_is_not_a_profile(tmp_path: Path) -> None:
    path = write_json(tmp_path / "list.json", [shipped_data("raspberry-pi-5")])
    with pytest.raises(DeviceProfileError, match="must be a JSON object"):
        device.load_profile(path)
    with pytest.raises(DeviceProfileError, match="must be a JSON object"):
        device.load_profile(path, overrides={"memory.total_bytes": 1})


def test_unknown_key_is_named(tmp_path: Path) -> None:
    data = shipped_data("raspberry-pi-5")
    data["colour"] = "red"
    with pytest.raises(DeviceProfileError, match="unknown key 'colour'"):
        device.load_profile(write_json(tmp_path / "top.json", data))
    data = shipped_data("raspberry-pi-5")
    data["cpu"]["turbo"] = True
    with pytest.raises(DeviceProfileError, match="cpu: unknown key 'turbo'"):
        device.load_profile(write_json(tmp_path / "nested.json", data))


def test_wrong_type_deep_inside_names_its_path(tmp_path: Path) -> None:
    data = shipped_data("snapdragon-flagship-phone")
    data["cpu"]["clusters"][0]["cpus"][0] = "x"
    with pytest.raises(DeviceProfileError) as error:
        device.load_profile(write_json(tmp_path / "deep.json", data))
    assert "cpu.clusters[0].cpus[0]: expected an integer, got 'x'" in str(error.value)
    assert str(tmp_path / "deep.json") in str(error.value)


def test_missing_required_field_is_named(tmp_path: Path) -> None:
    data = shipped_data("raspberry-pi-5")
    del data["memory"]["total_bytes"]
    with pytest.raises(DeviceProfileError, match=r"memory\.total_bytes: missing"):
        device.load_profile(write_json(tmp_path / "missing-field.json", data))


def test_bad_enum_value_lists_the_allowed_ones(tmp_path: Path) -> None:
    data = shipped_data("raspberry-pi-5")
    data["vulkan"]["status"] = "fine"
    with pytest.raises(DeviceProfileError, match=r"vulkan\.status: expected one of") as error:
        device.load_profile(write_json(tmp_path / "enum.json", data))
    assert "'not_installed'" in str(error.value)


def test_newer_schema_asks_for_an_upgrade(tmp_path: Path) -> None:
    data = shipped_data("raspberry-pi-5")
    data["schema"] = 2
    with pytest.raises(DeviceProfileError, match="upgrade iris-models"):
        device.load_profile(write_json(tmp_path / "future.json", data))


@pytest.mark.parametrize("name", ["missing.json", "sub/dir/missing"])
def test_missing_file_is_a_clear_error(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(DeviceProfileError, match="cannot read device profile") as error:
        device.load_profile(path)
    assert str(path) in str(error.value)
    assert "No such file" in str(error.value)


def test_unknown_shipped_name_lists_the_known_ones() -> None:
    with pytest.raises(DeviceProfileError, match="no device profile 'pocket-calculator'") as error:
        device.load_profile("pocket-calculator")
    for name in SHIPPED:
        assert name in str(error.value)


def test_current_uses_the_env_profile_and_an_argument_wins(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(device.ENV_PROFILE, "raspberry-pi-5")
    assert device.current().name == "raspberry-pi-5"
    assert device.current("x86-laptop").name == "x86-laptop"
    saved = device.load_profile("gpu-workstation", overrides={"memory.total_bytes": 4 * GIB})
    saved.save(tmp_path / "mine.json")
    monkeypatch.setenv(device.ENV_PROFILE, str(tmp_path / "mine.json"))
    assert device.current() == saved


def test_current_without_a_profile_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(device.ENV_NO_GPU, "1")
    monkeypatch.setattr(_core, "measure_read_bandwidth", fake_bandwidth([]))
    profile = device.current()
    assert profile.name == "this-device"
    assert profile.memory.total_bytes == psutil.virtual_memory().total


# ---------------------------------------------------------------------------------------------
# Serialisation round trips of arbitrary profiles

TEXT = st.text(max_size=12)
MAYBE_TEXT = st.none() | TEXT
U32 = st.integers(min_value=0, max_value=2**32 - 1)
U64 = st.integers(min_value=0, max_value=2**64 - 1)
TUPLES = st.lists(TEXT, max_size=4).map(tuple)

VULKAN_DEVICES = st.builds(
    VulkanDevice,
    name=TEXT,
    vendor_id=U32,
    device_type=st.sampled_from(["integrated", "discrete", "virtual", "cpu", "other"]),
    device_id=st.none() | U32,
    api_version=st.none() | st.sampled_from(["1.0.2", "1.1.128", "1.2.0", "1.3.280"]),
    driver_version=MAYBE_TEXT,
    driver_name=MAYBE_TEXT,
    driver_info=MAYBE_TEXT,
    memory_heaps=st.lists(
        st.builds(VulkanHeap, size_bytes=U64, device_local=st.booleans()), max_size=3
    ).map(tuple),
    subgroup_size=st.none() | st.integers(min_value=1, max_value=128),
    storage_buffer_16bit=st.none() | st.booleans(),
    shader_float16=st.none() | st.booleans(),
    extensions=TUPLES,
)
OPENCL_DEVICES = st.builds(
    OpenCLDevice,
    name=st.sampled_from(["QUALCOMM Adreno(TM) 750", "Intel(R) Arc", "Mali-G78", "cpu"]),
    vendor=MAYBE_TEXT,
    version=MAYBE_TEXT,
    device_type=st.sampled_from(["gpu", "cpu", "accelerator"]),
    vendor_id=st.none() | U32,
    global_memory_bytes=st.none() | U64,
    host_unified_memory=st.none() | st.booleans(),
    extensions=st.lists(st.sampled_from(["cl_khr_fp16", "cl_khr_subgroups"]), max_size=2).map(
        tuple
    ),
)
OVERRIDE_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda children: (
        st.lists(children, max_size=3).map(tuple)
        | st.dictionaries(TEXT, children, max_size=3).map(_overrides.freeze)
    ),
    max_leaves=6,
)
PROFILES = st.builds(
    DeviceProfile,
    name=TEXT,
    description=TEXT,
    os=st.builds(
        OSInfo,
        system=st.sampled_from(["linux", "android", "macos", "windows"]),
        release=MAYBE_TEXT,
        android_api_level=st.none() | st.integers(min_value=1, max_value=40),
        machine=TEXT,
    ),
    cpu=st.builds(
        CPUInfo,
        architecture=st.sampled_from(["x86_64", "aarch64", "arm64", "arm", "riscv64"]),
        vendor=TEXT,
        brand=TEXT,
        features=st.lists(
            st.sampled_from(["neon", "dotprod", "i8mm", "sve", "avx2", "avx512f", "fma"]),
            unique=True,
        ).map(tuple),
        sve_vector_bits=st.sampled_from([0, 128, 256, 512]),
        logical_cores=st.integers(min_value=1, max_value=256),
        physical_cores=st.integers(min_value=1, max_value=256),
        clusters=st.lists(
            st.builds(
                CoreCluster,
                max_frequency_khz=U32,
                cpus=st.lists(st.integers(min_value=0, max_value=255), max_size=8).map(tuple),
            ),
            max_size=4,
        ).map(tuple),
    ),
    memory=st.builds(
        MemoryInfo,
        total_bytes=U64,
        available_bytes=st.none() | U64,
        bandwidth_bytes_per_s=st.none() | U64,
        bandwidth_source=st.sampled_from([None, "measured", "spec"]),
    ),
    storage=st.builds(
        StorageInfo, path=MAYBE_TEXT, total_bytes=st.none() | U64, free_bytes=st.none() | U64
    ),
    soc=st.builds(
        SoCInfo,
        vendor=MAYBE_TEXT,
        model=MAYBE_TEXT,
        name=MAYBE_TEXT,
        board_platform=MAYBE_TEXT,
        hardware=MAYBE_TEXT,
    ),
    vulkan=st.builds(
        VulkanInfo,
        status=st.sampled_from(list(ProbeStatus)),
        detail=TEXT,
        library=MAYBE_TEXT,
        instance_version=MAYBE_TEXT,
        devices=st.lists(VULKAN_DEVICES, max_size=2).map(tuple),
    ),
    opencl=st.builds(
        OpenCLInfo,
        status=st.sampled_from(list(ProbeStatus)),
        detail=TEXT,
        platforms=st.lists(
            st.builds(
                OpenCLPlatform,
                name=TEXT,
                error=TEXT,
                devices=st.lists(OPENCL_DEVICES, max_size=2).map(tuple),
            ),
            max_size=2,
        ).map(tuple),
    ),
    cuda=st.builds(
        CUDAInfo,
        status=st.sampled_from(list(ProbeStatus)),
        driver_version=MAYBE_TEXT,
        devices=st.lists(
            st.builds(
                CUDADevice,
                name=TEXT,
                compute_capability=st.sampled_from(["3.5", "5.0", "8.9", "10.0"]),
                memory_bytes=U64,
                multiprocessors=st.none() | st.integers(min_value=1, max_value=200),
            ),
            max_size=2,
        ).map(tuple),
    ),
    metal=st.builds(MetalInfo, available=st.booleans(), family=MAYBE_TEXT),
    npus=st.lists(
        st.builds(
            NPUInfo, runtime=st.sampled_from(["qnn", "hexagon", "xdna"]), name=TEXT, evidence=TUPLES
        ),
        max_size=2,
    ).map(tuple),
    sources=st.lists(st.builds(Source, url=TEXT, facts=TEXT), max_size=2).map(tuple),
    notes=TEXT,
    overrides=st.dictionaries(
        st.sampled_from(["memory.total_bytes", "cpu.features", "soc.model", "notes"]),
        OVERRIDE_VALUES,
        max_size=3,
    ).map(lambda chosen: tuple(chosen.items()))
    | st.sampled_from([(("device_class", member.value),) for member in DeviceClass]),
)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=200)
@given(PROFILES)
def test_any_profile_round_trips_through_json(profile: DeviceProfile) -> None:
    text = profile.to_json()
    again = DeviceProfile.from_json(text)
    assert again == profile
    assert again.backends == profile.backends
    assert again.device_class == profile.device_class
    assert again.device_class_reasons == profile.device_class_reasons
    assert again.to_json() == text
    assert DeviceProfile.from_dict(json.loads(profile.to_json(indent=None))) == profile


# ---------------------------------------------------------------------------------------------
# probe() on this machine


def online_cpus() -> list[int]:
    cpus: list[int] = []
    for part in Path("/sys/devices/system/cpu/online").read_text().strip().split(","):
        first, _, last = part.partition("-")
        cpus.extend(range(int(first), int(last or first) + 1))
    return cpus


linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") or not Path("/sys/devices/system/cpu/online").exists(),
    reason="reads Linux's sysfs",
)


@linux_only
def test_probe_os_and_cpu_agree_with_the_os() -> None:
    profile = device.probe(gpu=False, bandwidth=False)
    uname = os.uname()
    assert profile.os.system == ("android" if hasattr(sys, "getandroidapilevel") else "linux")
    assert profile.os.machine == uname.machine
    assert profile.os.release == uname.release
    online = online_cpus()
    assert profile.cpu.logical_cores == len(online) == os.cpu_count()
    assert len(os.sched_getaffinity(0)) <= profile.cpu.logical_cores
    assert 1 <= profile.cpu.physical_cores <= profile.cpu.logical_cores
    covered = sorted(cpu for cluster in profile.cpu.clusters for cpu in cluster.cpus)
    assert covered == online
    features = _core.probe_cpu_features()
    assert profile.cpu.architecture == features["architecture"]
    assert list(profile.cpu.features) == features["features"]
    assert profile.backends[0].device == isa_level(profile.cpu)


def test_probe_memory_agrees_with_psutil() -> None:
    profile = device.probe(gpu=False, bandwidth=False)
    assert profile.memory.total_bytes == psutil.virtual_memory().total
    assert profile.memory.available_bytes is not None
    assert 0 < profile.memory.available_bytes <= profile.memory.total_bytes
    assert profile.memory.bandwidth_bytes_per_s is None  # not measured: bandwidth=False
    assert profile.memory.bandwidth_source is None


def test_memory_facts_read_meminfo_in_bytes(tmp_path: Path) -> None:
    meminfo = tmp_path / "meminfo"
    meminfo.write_text(
        "MemTotal:        7849312 kB\nMemFree:          402136 kB\n"
        "MemAvailable:    3178740 kB\nHugePages_Total:       0\n",
        encoding="ascii",
    )
    assert _host.memory_facts(str(meminfo)) == {
        "total_bytes": 7849312 * 1024,
        "available_bytes": 3178740 * 1024,
    }


@pytest.mark.parametrize("content", [None, "MemTotal:        7849312 kB\n", "garbage"])
def test_memory_facts_fall_back_to_psutil(tmp_path: Path, content: str | None) -> None:
    meminfo = tmp_path / "meminfo"
    if content is not None:  # old kernels have no MemAvailable
        meminfo.write_text(content, encoding="ascii")
    facts = _host.memory_facts(str(meminfo))
    assert facts["total_bytes"] == psutil.virtual_memory().total
    assert facts["available_bytes"] is not None


def test_probe_measures_storage_where_the_store_will_be(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    store = tmp_path / "store-not-yet-created"
    monkeypatch.setenv("IRIS_MODELS_HOME", str(store))
    profile = device.probe(gpu=False, bandwidth=False)
    usage = psutil.disk_usage(str(tmp_path))
    assert profile.storage.path == str(store)
    assert profile.storage.total_bytes == usage.total
    assert profile.storage.free_bytes is not None
    # Free space moves as other processes write; the same file system is what matters.
    assert abs(profile.storage.free_bytes - usage.free) < 256 << 20
    assert not store.exists()  # probing creates nothing


def test_storage_is_measured_at_the_nearest_existing_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    asked: list[Path] = []

    def fake_usage(path: Any) -> Any:
        asked.append(Path(path))
        return DiskUsage(total=1000, used=400, free=600)

    monkeypatch.setattr(shutil, "disk_usage", fake_usage)
    monkeypatch.setenv("IRIS_MODELS_HOME", str(tmp_path / "a" / "b"))
    profile = device.probe(gpu=False, bandwidth=False)
    assert asked == [tmp_path]
    assert (profile.storage.total_bytes, profile.storage.free_bytes) == (1000, 600)
    explicit = device.probe(gpu=False, bandwidth=False, store_path=tmp_path / "elsewhere")
    assert explicit.storage.path == str(tmp_path / "elsewhere")


def test_storage_that_cannot_be_measured_is_unknown(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def failing_usage(path: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(shutil, "disk_usage", failing_usage)
    profile = device.probe(gpu=False, bandwidth=False, store_path=tmp_path)
    assert profile.storage == StorageInfo(path=str(tmp_path), total_bytes=None, free_bytes=None)


def forbid_gpu_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the GPU probe ran")

    monkeypatch.setattr(_gpu, "probe", fail)


def assert_gpus_skipped(profile: DeviceProfile) -> None:
    for info in (profile.vulkan, profile.opencl, profile.cuda):
        assert info.status is ProbeStatus.SKIPPED
    assert not {"vulkan", "opencl", "cuda"} & {backend.name for backend in profile.backends}


def test_gpu_false_skips_the_gpu_probe(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_gpu_probe(monkeypatch)
    assert_gpus_skipped(device.probe(gpu=False, bandwidth=False))


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_no_gpu_env_var_skips_the_gpu_probe(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    forbid_gpu_probe(monkeypatch)
    monkeypatch.setenv(device.ENV_NO_GPU, value)
    assert_gpus_skipped(device.probe(bandwidth=False))


def test_gpus_are_probed_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []

    def fake_probe(*, refresh: bool = False) -> dict[str, dict[str, Any]]:
        calls.append(refresh)
        return {api: {"status": "not_installed"} for api in ("vulkan", "opencl", "cuda")}

    monkeypatch.setattr(_gpu, "probe", fake_probe)
    monkeypatch.setenv(device.ENV_NO_GPU, "0")
    profile = device.probe(bandwidth=False)
    assert calls == [False]
    for info in (profile.vulkan, profile.opencl, profile.cuda):
        assert info.status is ProbeStatus.NOT_INSTALLED


# ---------------------------------------------------------------------------------------------
# Memory bandwidth and the cache


def fake_bandwidth(calls: list[tuple[int, int, float]], rate: float = 12_345_678.25) -> Any:
    def measure(threads: int, buffer_bytes: int, time_budget_s: float) -> dict[str, Any]:
        calls.append((threads, buffer_bytes, time_budget_s))
        return {
            "read_bytes_per_s": rate + len(calls),
            "threads": threads,
            "buffer_bytes": buffer_bytes,
            "passes": len(calls),
            "elapsed_s": 0.2,
        }

    return measure


def test_bandwidth_is_measured_then_cached_until_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    real = _core.measure_read_bandwidth
    calls: list[tuple[int, int, float]] = []

    def counted(threads: int, buffer_bytes: int, time_budget_s: float) -> dict[str, Any]:
        calls.append((threads, buffer_bytes, time_budget_s))
        return dict(real(threads, buffer_bytes, time_budget_s))

    monkeypatch.setattr(_core, "measure_read_bandwidth", counted)
    first = _bandwidth.measure(1, None)
    assert first["read_bytes_per_s"] > 0
    assert first["threads"] == 1
    assert first["buffer_bytes"] == _bandwidth.BUFFER_BYTES
    assert calls == [(1, _bandwidth.BUFFER_BYTES, _bandwidth.TIME_BUDGET_S)]
    assert _bandwidth.measure(1, None) == first
    assert len(calls) == 1
    fresh = _bandwidth.measure(1, None, refresh=True)
    assert len(calls) == 2
    assert fresh["read_bytes_per_s"] > 0
    stored = json.loads(_cache.cache_file("bandwidth").read_text(encoding="utf-8"))
    assert stored["value"] == fresh  # the fresh measurement replaced the cached one


@pytest.mark.parametrize(
    ("available", "buffer_bytes"),
    [
        (None, 128 << 20),
        (64 << 30, 128 << 20),
        (512 << 20, 64 << 20),
        (64 << 20, 16 << 20),
        (1, 16 << 20),
    ],
)
def test_bandwidth_buffer_takes_at_most_an_eighth_of_free_memory(
    monkeypatch: pytest.MonkeyPatch, available: int | None, buffer_bytes: int
) -> None:
    calls: list[tuple[int, int, float]] = []
    monkeypatch.setattr(_core, "measure_read_bandwidth", fake_bandwidth(calls))
    _bandwidth.measure(2, available)
    assert calls == [(2, buffer_bytes, _bandwidth.TIME_BUDGET_S)]


def test_bandwidth_cache_is_per_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int, float]] = []
    monkeypatch.setattr(_core, "measure_read_bandwidth", fake_bandwidth(calls))
    one = _bandwidth.measure(1, None)
    two = _bandwidth.measure(2, None)
    assert [threads for threads, _, _ in calls] == [1, 2]
    assert one != two


@pytest.mark.parametrize(
    "content",
    ["not json", "[]", '{"format": 1, "fingerprint": "other", "value": {"read_bytes_per_s": 1}}'],
)
def test_a_corrupt_or_stale_cache_is_measured_again(
    monkeypatch: pytest.MonkeyPatch, content: str
) -> None:
    calls: list[tuple[int, int, float]] = []
    monkeypatch.setattr(_core, "measure_read_bandwidth", fake_bandwidth(calls))
    path = _cache.cache_file("bandwidth")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8")
    measured = _bandwidth.measure(1, None)
    assert len(calls) == 1
    assert measured["read_bytes_per_s"] == 12_345_679.25


def test_probe_reports_the_measured_bandwidth(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int, float]] = []
    monkeypatch.setattr(_core, "measure_read_bandwidth", fake_bandwidth(calls))
    profile = device.probe(gpu=False)
    assert profile.memory.bandwidth_bytes_per_s == 12_345_679  # rounded
    assert profile.memory.bandwidth_source == "measured"
    assert calls[0][0] == profile.cpu.physical_cores


def test_unwritable_cache_dir_does_not_stop_probing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("IRIS_MODELS_CACHE_DIR", str(blocker / "cache"))
    profile = device.probe(gpu=False, bandwidth=True)
    assert profile.memory.bandwidth_bytes_per_s is not None
    assert profile.memory.bandwidth_bytes_per_s > 0
    assert _cache.load("bandwidth", "any") is None
    _cache.store("bandwidth", "any", {"read_bytes_per_s": 1.0})  # must not raise
    assert blocker.read_text(encoding="utf-8") == "not a folder"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]
