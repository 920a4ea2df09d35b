"""The compiled CPU probe against what the kernel reports on this machine: /proc/cpuinfo's
flags (which the kernel clears when the OS does not save a register state) and CPU counts.
The public device profile built on this probe is still to come; this checks its core."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest

from iris_models._native import _core

CPUINFO = Path("/proc/cpuinfo")

# Our feature names -> the kernel's /proc/cpuinfo flag names (x86).
X86_FLAGS = {
    "sse3": "pni",
    "ssse3": "ssse3",
    "sse4.1": "sse4_1",
    "sse4.2": "sse4_2",
    "avx": "avx",
    "avx2": "avx2",
    "fma": "fma",
    "f16c": "f16c",
    "bmi2": "bmi2",
    "sha": "sha_ni",
    "avx512f": "avx512f",
    "avx512bw": "avx512bw",
    "avx512vl": "avx512vl",
    "avx512dq": "avx512dq",
    "avx512cd": "avx512cd",
    "avx512vnni": "avx512_vnni",
    "avx512vbmi": "avx512vbmi",
    "avx512bf16": "avx512_bf16",
    "avx512fp16": "avx512_fp16",
    "avxvnni": "avx_vnni",
}


def kernel_flags() -> set[str]:
    for line in CPUINFO.read_text().splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.partition(":")[2].split())
    return set()


@pytest.mark.skipif(
    platform.machine() != "x86_64" or not CPUINFO.exists(), reason="x86-64 Linux only"
)
@pytest.mark.parametrize("ours", list(X86_FLAGS))
def test_x86_feature_agrees_with_the_kernel(ours: str) -> None:
    probed = set(_core.probe_cpu_features()["features"])
    assert (ours in probed) == (X86_FLAGS[ours] in kernel_flags())


def test_probe_names_the_architecture_and_vendor() -> None:
    cpu = _core.probe_cpu_features()
    assert cpu["architecture"] == {"x86_64": "x86_64", "aarch64": "aarch64"}.get(
        platform.machine(), cpu["architecture"]
    )
    if platform.machine() == "x86_64":
        assert cpu["vendor"] in {"GenuineIntel", "AuthenticAMD", "HygonGenuine"}


@pytest.mark.skipif(not CPUINFO.exists(), reason="needs /proc/cpuinfo")
def test_core_counts_agree_with_the_os() -> None:
    topology = _core.probe_core_topology()
    assert topology["logical_cores"] == os.cpu_count()
    assert 1 <= topology["physical_cores"] <= topology["logical_cores"]
    covered = sorted(cpu for cluster in topology["clusters"] for cpu in cluster["cpus"])
    assert covered == list(range(topology["logical_cores"]))


def test_topology_of_a_copied_sysfs_tree(tmp_path: Path) -> None:
    # Two clusters of two CPUs without SMT, as a phone's sysfs lays them out.
    (tmp_path / "online").write_text("0-3\n")
    for cpu, khz in enumerate((1_800_000, 1_800_000, 2_800_000, 2_800_000)):
        base = tmp_path / f"cpu{cpu}"
        (base / "topology").mkdir(parents=True)
        (base / "topology" / "core_cpus_list").write_text(f"{cpu}\n")
        (base / "cpufreq").mkdir()
        (base / "cpufreq" / "cpuinfo_max_freq").write_text(f"{khz}\n")
    topology = _core.probe_core_topology(str(tmp_path))
    assert topology["physical_cores"] == 4
    assert [c["max_frequency_khz"] for c in topology["clusters"]] == [2_800_000, 1_800_000]
    assert topology["clusters"][0]["cpus"] == [2, 3]
