"""CPU topology, /proc/cpuinfo, Android properties and SoC identification against real captures
of five ARM devices (tests/fixtures/devices, copied from pytorch/cpuinfo's mocks; each folder's
SOURCE.md says how), and the SoC vendor table and NPU runtime signs."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import psutil
import pytest

from iris_models import _core
from iris_models.device import _host, _soc

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "devices"
EXPECTED: dict[str, dict[str, Any]] = json.loads(
    (FIXTURES / "expected.json").read_text(encoding="utf-8")
)
DEVICES = sorted(EXPECTED)
WITH_ONLINE_FILE = [d for d in DEVICES if (FIXTURES / d / "sys/devices/system/cpu/online").exists()]
WITH_PROPERTIES = [d for d in DEVICES if (FIXTURES / d / "android-properties.txt").exists()]


def cpu_list(text: str) -> list[int]:
    cpus: list[int] = []
    for part in text.strip().split(","):
        first, _, last = part.partition("-")
        cpus.extend(range(int(first), int(last or first) + 1))
    return cpus


def cpuinfo(name: str) -> dict[str, Any]:
    text = (FIXTURES / name / "proc/cpuinfo").read_text(encoding="utf-8")
    return dict(_core.parse_cpuinfo(text))


def properties(name: str) -> dict[str, str]:
    path = FIXTURES / name / "android-properties.txt"
    if not path.exists():
        return {}
    return _soc.parse_getprop(path.read_text(encoding="utf-8"))


def topology(name: str) -> dict[str, Any]:
    return dict(_core.probe_core_topology(str(FIXTURES / name / "sys/devices/system/cpu")))


def soc0(name: str) -> dict[str, str]:
    return dict(_core.read_soc_files(str(FIXTURES / name / "sys/devices/soc0")))


def test_the_fixtures_are_the_five_captured_devices() -> None:
    assert DEVICES == ["galaxy-s8-global", "galaxy-s9-us", "meizu-pro-7-plus", "pixel", "scaleway"]
    for name in DEVICES:
        assert (FIXTURES / name / "SOURCE.md").is_file()
        assert (FIXTURES / name / "proc/cpuinfo").is_file()


# ---------------------------------------------------------------------------------------------
# /proc/cpuinfo


@pytest.mark.parametrize("name", DEVICES)
def test_parse_cpuinfo_gives_the_captured_hardware_parts_and_features(name: str) -> None:
    expected = EXPECTED[name]
    parsed = cpuinfo(name)
    assert parsed["hardware"] == (expected["cpuinfo_hardware"] or "")
    assert len(parsed["cpu_parts"]) == len(set(parsed["cpu_parts"]))  # distinct
    assert sorted(parsed["cpu_parts"]) == expected["cpu_parts"]
    assert sorted(parsed["features"]) == expected["cpuinfo_features"]
    # Every online CPU has its own "processor" entry (the Meizu lists only its online ones).
    assert parsed["processors"] == expected["logical_cores"]


def test_parse_cpuinfo_keeps_the_order_parts_first_appear_in() -> None:
    # Galaxy S9: cpu0-3 are 0x803 (Kryo 385 Silver), cpu4-7 0x802 (Gold).
    assert cpuinfo("galaxy-s9-us")["cpu_parts"] == ["0x803", "0x802"]
    assert cpuinfo("galaxy-s8-global")["implementers"] == ["0x41", "0x53"]


def test_parse_cpuinfo_of_empty_text_is_empty() -> None:
    parsed = _core.parse_cpuinfo("")
    assert parsed["hardware"] == ""
    assert list(parsed["features"]) == []
    assert list(parsed["cpu_parts"]) == []
    assert parsed["processors"] == 0


# ---------------------------------------------------------------------------------------------
# CPU topology from sysfs


def online_clusters(name: str) -> list[dict[str, Any]]:
    """expected.json's clusters restricted to the CPUs that were online at capture time:
    the probe counts online CPUs only."""
    online = set(cpu_list((FIXTURES / name / "sys/devices/system/cpu/online").read_text()))
    clusters = []
    for cluster in EXPECTED[name]["clusters"]:
        cpus = [cpu for cpu in cluster["cpus"] if cpu in online]
        if cpus:
            clusters.append({"max_frequency_khz": cluster["max_frequency_khz"], "cpus": cpus})
    return clusters


@pytest.mark.parametrize("name", WITH_ONLINE_FILE)
def test_topology_counts_online_cpus_and_groups_them_by_max_clock(name: str) -> None:
    found = topology(name)
    assert found["logical_cores"] == EXPECTED[name]["logical_cores"]
    assert found["clusters"] == online_clusters(name)
    # None of these ARM cores has SMT: every online CPU is a core of its own.
    assert found["physical_cores"] == found["logical_cores"]


def test_meizu_offline_cpus_are_left_out_of_its_clusters() -> None:
    # online "0-4,8": CPUs 5-7 and 9 were offline, though their cpufreq files exist.
    assert WITH_ONLINE_FILE.count("meizu-pro-7-plus") == 1
    assert topology("meizu-pro-7-plus") == {
        "logical_cores": 6,
        "physical_cores": 6,
        "clusters": [
            {"max_frequency_khz": 2600000, "cpus": [8]},
            {"max_frequency_khz": 2197000, "cpus": [4]},
            {"max_frequency_khz": 1898000, "cpus": [0, 1, 2, 3]},
        ],
        "from_sysfs": True,
    }


def test_scaleway_capture_has_no_online_file() -> None:
    cpu_root = FIXTURES / "scaleway/sys/devices/system/cpu"
    assert not (cpu_root / "online").exists()
    assert (cpu_root / "present").read_text().strip() == "0-5"


def test_scaleway_without_online_file_counts_the_present_cpus() -> None:
    found = topology("scaleway")
    assert found["logical_cores"] == EXPECTED["scaleway"]["logical_cores"] == 6
    covered = sorted(cpu for cluster in found["clusters"] for cpu in cluster["cpus"])
    assert covered in ([], list(range(6)))
    # No cpufreq files: the kernel does not say the clock.
    assert all(cluster["max_frequency_khz"] == 0 for cluster in found["clusters"])


@pytest.mark.parametrize("lists", [("present", "possible"), ("possible",)])
def test_tree_without_online_file_counts_its_present_or_possible_cpus(
    tmp_path: Path, lists: tuple[str, ...]
) -> None:
    count = (os.cpu_count() or 1) + 3  # never this machine's count
    for name in lists:
        (tmp_path / name).write_text(f"0-{count - 1}\n")
    found = topology_of(tmp_path)
    assert found["logical_cores"] == count
    assert found["from_sysfs"] is True
    assert found["clusters"] == [{"max_frequency_khz": 0, "cpus": list(range(count))}]


def test_online_list_wins_over_present(tmp_path: Path) -> None:
    (tmp_path / "online").write_text("0-1,3\n")
    (tmp_path / "present").write_text("0-7\n")
    found = topology_of(tmp_path)
    assert found["logical_cores"] == 3
    assert found["clusters"] == [{"max_frequency_khz": 0, "cpus": [0, 1, 3]}]


def topology_of(root: Path) -> dict[str, Any]:
    return dict(_core.probe_core_topology(str(root)))


def test_tree_with_nothing_falls_back_to_this_machines_cpus(tmp_path: Path) -> None:
    found = topology_of(tmp_path / "nothing-here")
    assert found["from_sysfs"] is False
    assert found["logical_cores"] == max(1, os.cpu_count() or 1)
    assert 1 <= found["physical_cores"] <= found["logical_cores"]


def test_cpu_facts_without_sysfs_asks_the_os_for_core_counts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    def cpu_count(logical: bool = True) -> int:
        return 64 if logical else 1

    monkeypatch.setattr(psutil, "cpu_count", cpu_count)
    facts = _host.cpu_facts(str(tmp_path / "no-sysfs"))
    assert (facts["logical_cores"], facts["physical_cores"]) == (64, 1)
    # With a CPU tree the kernel's answer stands.
    captured = _host.cpu_facts(str(FIXTURES / "pixel/sys/devices/system/cpu"))
    assert (captured["logical_cores"], captured["physical_cores"]) == (4, 4)


# ---------------------------------------------------------------------------------------------
# Android properties


@pytest.mark.parametrize("name", WITH_PROPERTIES)
def test_parse_getprop_reads_every_captured_property(name: str) -> None:
    text = (FIXTURES / name / "android-properties.txt").read_text(encoding="utf-8")
    parsed = _soc.parse_getprop(text)
    for key, value in EXPECTED[name]["android"].items():
        assert parsed[key] == value
    # One property per line that starts one (a value may go on over further lines).
    assert len(parsed) == sum(1 for line in text.split("\n") if line.startswith("["))


def test_parse_getprop_keeps_a_multi_line_value() -> None:
    parsed = properties("meizu-pro-7-plus")
    assert parsed["ro.meizu.subappid"] == "tpid=M1793_FT6336_V13-0x31_BN\nColor=Black"
    assert parsed["ro.mediatek.platform"] == "MT6799"


def test_scaleway_has_no_android_properties() -> None:
    assert "scaleway" not in WITH_PROPERTIES
    assert EXPECTED["scaleway"]["android"] == {}


def test_parse_getprop_small_cases() -> None:
    text = "[a.b]: [1]\n[empty]: []\n[brackets]: [x]y]\n[two]: [line one\nline two]\nnoise\n"
    assert _soc.parse_getprop(text) == {
        "a.b": "1",
        "empty": "",
        "brackets": "x]y",
        "two": "line one\nline two",
    }
    assert _soc.parse_getprop("") == {}


# ---------------------------------------------------------------------------------------------
# SoC identification

MODELS = {
    "galaxy-s9-us": "SDM845",
    "meizu-pro-7-plus": "MT6799",
    "pixel": "MSM8996PRO",
    "scaleway": None,
    "galaxy-s8-global": "EXYNOS8895",
}


def identify(name: str) -> _soc.SoCFacts:
    return _soc.identify(properties(name), cpuinfo(name)["hardware"], soc0(name), "")


@pytest.mark.parametrize("name", DEVICES)
def test_identify_names_the_captured_vendor(name: str) -> None:
    facts = identify(name)
    assert facts.vendor == EXPECTED[name]["soc_vendor"]
    props = properties(name)
    assert facts.board_platform == (props.get("ro.board.platform") or None)
    assert facts.hardware == (
        EXPECTED[name]["cpuinfo_hardware"] or props.get("ro.hardware") or None
    )


@pytest.mark.parametrize("name", DEVICES)
def test_identify_gives_the_chip_as_model(name: str) -> None:
    model = identify(name).model
    assert (model.upper() if model else None) == MODELS[name]


def test_soc0_files_of_the_galaxy_s9() -> None:
    assert soc0("galaxy-s9-us") == {
        "machine": "SDM845",
        "family": "Snapdragon",
        "soc_id": "321",
        "vendor": "Qualcomm",
        "revision": "2.1",
    }


def test_soc0_files_missing_are_empty_strings(tmp_path: Path) -> None:
    assert set(_core.read_soc_files(str(tmp_path / "none")).values()) == {""}


@pytest.mark.parametrize(
    ("identifier", "vendor"),
    [
        ("SM8650", "qualcomm"),
        ("sdm845", "qualcomm"),
        ("msm8996", "qualcomm"),
        ("kalama", "qualcomm"),
        ("pineapple", "qualcomm"),
        ("Qualcomm Technologies, Inc SDM845", "qualcomm"),
        ("qcom,sm8650", "qualcomm"),
        ("mt6983", "mediatek"),
        ("MT6893", "mediatek"),
        ("mediatek,mt8183", "mediatek"),
        ("exynos2200", "samsung"),
        ("s5e9925", "samsung"),
        ("universal8895", "samsung"),
        ("samsungexynos8895", "samsung"),
        ("gs101", "google"),
        ("zuma", "google"),
        ("Tensor G3", "google"),
        ("bcm2712", "broadcom"),
        ("raspberrypi,5-model-b", "broadcom"),
        ("rk3588", "rockchip"),
        ("rockchip,rk3399", "rockchip"),
        ("sun50iw9", "allwinner"),
        ("allwinner,sun50i-h616", "allwinner"),
        ("kirin990", "hisilicon"),
        ("hi3660", "hisilicon"),
        ("ums9230", "unisoc"),
        ("sc9863", "unisoc"),
        ("meson", "amlogic"),
        ("tegra", "nvidia"),
        ("nvidia,tegra234", "nvidia"),
        ("  SM8650  ", "qualcomm"),
        ("", None),
        ("   ", None),
        ("foo", None),
        ("sm", None),
        ("x86_64", None),
        pytest.param("brcm,bcm2711", "broadcom"),
        pytest.param("sprd,ums512", "unisoc"),
    ],
)
def test_vendor_of(identifier: str, vendor: str | None) -> None:
    assert _soc.vendor_of(identifier) == vendor


@pytest.mark.parametrize("manufacturer", ["QTI", "qti", "QCOM", "Qualcomm"])
def test_soc_manufacturer_property_wins_over_conflicting_codenames(manufacturer: str) -> None:
    facts = _soc.identify(
        {
            "ro.board.platform": "mt6799",
            "ro.hardware": "exynos",
            "ro.soc.manufacturer": manufacturer,
        },
        "mt6799",
        {"family": "Samsung Exynos", "machine": "", "soc_id": "", "vendor": "", "revision": ""},
        "google,gs101\0",
    )
    assert facts.vendor == "qualcomm"
    assert facts.model == "MT6799"  # no ro.soc.model: the model comes from the Hardware line


def test_soc_model_property_is_the_model() -> None:
    facts = _soc.identify(
        {"ro.soc.manufacturer": "QTI", "ro.soc.model": "SM8650"}, "", {"machine": "SDM845"}, ""
    )
    assert (facts.vendor, facts.model) == ("qualcomm", "SM8650")


def test_unknown_soc_manufacturer_is_kept_lower_cased() -> None:
    assert _soc.identify({"ro.soc.manufacturer": "Acme"}, "", {}, "").vendor == "acme"


def test_the_first_source_naming_a_vendor_wins() -> None:
    # ro.board.platform comes before /proc/cpuinfo's Hardware line
    facts = _soc.identify({"ro.board.platform": "kalama"}, "mt6799", {}, "")
    assert facts.vendor == "qualcomm"
    assert facts.model == "MT6799"  # the model still comes from the Hardware line
    # sources that name no vendor are passed over
    facts = _soc.identify({"ro.board.platform": "PRO7Plus"}, "mt6799", {}, "")
    assert facts.vendor == "mediatek"


def test_device_tree_compatible_names_the_vendor() -> None:
    facts = _soc.identify({}, "", {}, "raspberrypi,5-model-b\0brcm,bcm2712\0")
    assert facts.vendor == "broadcom"
    assert _soc.identify({}, "", {}, "").vendor is None


# ---------------------------------------------------------------------------------------------
# _host.soc_facts on the captures


@pytest.mark.parametrize("name", DEVICES)
def test_soc_facts_from_the_capture_files(name: str, tmp_path: Path) -> None:
    facts = _host.soc_facts(
        properties(name),
        cpuinfo_path=str(FIXTURES / name / "proc/cpuinfo"),
        soc0_root=str(FIXTURES / name / "sys/devices/soc0"),
        device_tree_root=str(tmp_path / "no-device-tree"),
    )
    assert set(facts) == {"vendor", "model", "name", "board_platform", "hardware"}
    assert facts["vendor"] == EXPECTED[name]["soc_vendor"]
    identified = identify(name)
    assert facts["model"] == identified.model
    assert facts["hardware"] == identified.hardware
    assert facts["board_platform"] == identified.board_platform
    assert facts["name"] is None


def test_soc_facts_reads_the_device_tree(tmp_path: Path) -> None:
    # The Scaleway capture names no vendor; a device tree that does decides it.
    (tmp_path / "compatible").write_bytes(b"radxa,rock-5b\0rockchip,rk3588\0")
    facts = _host.soc_facts(
        {},
        cpuinfo_path=str(FIXTURES / "scaleway/proc/cpuinfo"),
        soc0_root=str(tmp_path / "no-soc0"),
        device_tree_root=str(tmp_path),
    )
    assert facts["vendor"] == "rockchip"


def test_soc_facts_without_any_source_is_empty(tmp_path: Path) -> None:
    facts = _host.soc_facts(
        {},
        cpuinfo_path=str(tmp_path / "no-cpuinfo"),
        soc0_root=str(tmp_path / "no-soc0"),
        device_tree_root=str(tmp_path / "no-device-tree"),
    )
    assert facts == dict.fromkeys(("vendor", "model", "name", "board_platform", "hardware"))


# ---------------------------------------------------------------------------------------------
# NPU runtimes, by file name


def touch(folder: Path, name: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"")
    return str(folder / name)


def test_qnn_libraries_are_reported_with_their_evidence(tmp_path: Path) -> None:
    htp = touch(tmp_path / "vendor", "libQnnHtp.so")
    fastrpc = touch(tmp_path / "system", "libcdsprpc.so")
    found = _host.npu_facts(search_dirs=[str(tmp_path / "vendor"), str(tmp_path / "system")])
    assert found == [
        {"runtime": "qnn", "name": "Qualcomm Hexagon (QNN)", "evidence": [htp, fastrpc]}
    ]


def test_fastrpc_alone_is_a_hexagon_dsp(tmp_path: Path) -> None:
    fastrpc = touch(tmp_path, "libcdsprpc.so")
    assert _host.npu_facts(search_dirs=[str(tmp_path)]) == [
        {"runtime": "hexagon", "name": "Qualcomm Hexagon DSP", "evidence": [fastrpc]}
    ]


def test_no_npu_libraries_is_no_npu(tmp_path: Path) -> None:
    (tmp_path / "libQnnHtp.so").mkdir()  # a folder of that name is not a library
    touch(tmp_path, "libOpenCL.so")
    assert _host.npu_facts(search_dirs=[str(tmp_path), str(tmp_path / "missing")]) == []
    assert _host.npu_facts(search_dirs=[]) == []


def test_a_folder_listed_twice_gives_its_evidence_once(tmp_path: Path) -> None:
    htp = touch(tmp_path, "libQnnHtp.so")
    found = _host.npu_facts(search_dirs=[str(tmp_path), str(tmp_path), ""])
    assert found[0]["evidence"] == [htp]


@pytest.mark.skipif(
    any(Path(d).exists() for d in _host._VENDOR_LIBRARY_DIRS),
    reason="this machine has Android's vendor library folders",
)
@pytest.mark.parametrize("variable", ["LD_LIBRARY_PATH", "ADSP_LIBRARY_PATH", "QNN_SDK_ROOT"])
def test_default_search_follows_the_library_path_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    for name in ("LD_LIBRARY_PATH", "ADSP_LIBRARY_PATH", "QNN_SDK_ROOT"):
        monkeypatch.delenv(name, raising=False)
    assert _host.npu_facts() == []
    if variable == "QNN_SDK_ROOT":
        htp = touch(tmp_path / "lib" / "aarch64-android", "libQnnHtp.so")
        monkeypatch.setenv(variable, str(tmp_path))
    else:
        htp = touch(tmp_path / "libs", "libQnnHtp.so")
        separator = ";" if variable == "ADSP_LIBRARY_PATH" else os.pathsep
        monkeypatch.setenv(variable, f"/nonexistent{separator}{tmp_path / 'libs'}")
    found = _host.npu_facts()
    assert [npu["runtime"] for npu in found] == ["qnn"]
    assert found[0]["evidence"] == [htp]
