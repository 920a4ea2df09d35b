"""The GPU probe against real loaders and drivers: Mesa's lavapipe (Vulkan) and PoCL (OpenCL)
checked fact by fact against vulkaninfo and clinfo on the same machine; the answers without a
loader and without a driver; and the isolation, against a fake driver (fixtures/fake_icd)
that crashes or hangs inside the loader, with the cache that remembers such failures."""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from tests.services import require_service

from iris_models import _core, device
from iris_models.device import DeviceProfile, ProbeStatus, _cache, _gpu

FAKE_ICD_SOURCE = Path(__file__).parent / "fixtures" / "fake_icd" / "fake_icd.c"
CHILD_MODULE = "iris_models.device._gpu_child"
# Only for subprocess.run here, so that a broken probe fails the test instead of hanging it.
SAFETY_TIMEOUT_S = 120


@pytest.fixture(autouse=True)
def _probe_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing from the caller's environment may change how these tests probe: above all, an
    in-process probe would let the fake driver crash pytest itself."""
    for name in (
        _gpu.ENV_IN_PROCESS,
        _gpu.ENV_TIMEOUT,
        "IRIS_MODELS_VULKAN_LIBRARY",
        "IRIS_MODELS_OPENCL_LIBRARY",
        "IRIS_MODELS_CUDA_LIBRARY",
        "IRIS_MODELS_DEVICE_OVERRIDES",
        "FAKE_ICD_MODE",
        "FAKE_ICD_MARKER",
    ):
        monkeypatch.delenv(name, raising=False)


def _can_load(library: str) -> bool:
    try:
        ctypes.CDLL(library)
    except OSError:
        return False
    return True


def _require_tool(name: str) -> None:
    require_service(shutil.which(name) is not None, f"{name} is not installed")


def _run(args: list[str], cwd: Path | None = None) -> str:
    """A tool's stdout; its stderr is ignored (vulkaninfo complains about XDG_RUNTIME_DIR)."""
    done = subprocess.run(
        args,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=SAFETY_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, f"{args} exited with {done.returncode}: {done.stderr[-2000:]}"
    return done.stdout


def _run_child(api: str) -> subprocess.CompletedProcess[str]:
    """The isolated probe's child process, run directly in this process's environment."""
    return subprocess.run(
        [sys.executable, "-m", CHILD_MODULE, api],
        env=_gpu._child_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=SAFETY_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


# ---- Vulkan against vulkaninfo ----------------------------------------------------------

_VK_DEVICE_TYPES = {
    "PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU": "integrated",
    "PHYSICAL_DEVICE_TYPE_DISCRETE_GPU": "discrete",
    "PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU": "virtual",
    "PHYSICAL_DEVICE_TYPE_CPU": "cpu",
    "PHYSICAL_DEVICE_TYPE_OTHER": "other",
}


def _gpu_sections(text: str) -> list[str]:
    """The per-device parts of vulkaninfo's text, each starting after its "GPUn:" line."""
    parts = re.split(r"^GPU(\d+):\s*$", text, flags=re.MULTILINE)
    indices = [int(number) for number in parts[1::2]]
    assert indices == list(range(len(indices))), f"GPU sections out of order: {indices}"
    return parts[2::2]


def _summary_fields(section: str) -> dict[str, str]:
    fields = {}
    for line in section.splitlines():
        match = re.match(r"^\s+(\w+)\s*=\s*(.*?)\s*$", line)
        if match:
            fields[match.group(1)] = match.group(2)
    return fields


def _search(pattern: str, text: str) -> str:
    match = re.search(pattern, text, flags=re.MULTILINE)
    assert match is not None, f"{pattern!r} not in vulkaninfo's output"
    return match.group(1)


def _memory_heaps(section: str) -> list[dict[str, Any]]:
    """memoryHeaps from a device's part of `vulkaninfo --text`."""
    memory = section.split("VkPhysicalDeviceMemoryProperties:", 1)[1]
    memory = memory.split("memoryTypes:", 1)[0]
    count = int(_search(r"memoryHeaps: count = (\d+)", memory))
    blocks = re.split(r"^\s+memoryHeaps\[\d+\]:\s*$", memory, flags=re.MULTILINE)[1:]
    assert len(blocks) == count
    return [
        {
            "size_bytes": int(_search(r"size\s*=\s*(\d+)", block)),
            "device_local": "MEMORY_HEAP_DEVICE_LOCAL_BIT" in block,
        }
        for block in blocks
    ]


def _profile_json(folder: Path, index: int) -> dict[str, Any]:
    """`vulkaninfo --json=N`: the device's profile file (VP_VULKANINFO_*.json)."""
    folder.mkdir()
    _run(["vulkaninfo", f"--json={index}"], cwd=folder)
    [written] = folder.glob("VP_VULKANINFO_*.json")
    data: dict[str, Any] = json.loads(written.read_text(encoding="utf-8"))
    return data["capabilities"]["device"]


def _feature(features: dict[str, Any], name: str, structs: tuple[str, ...]) -> bool | None:
    for struct in structs:
        if name in features.get(struct, {}):
            return bool(features[struct][name])
    return None


@dataclass(frozen=True)
class VulkaninfoAnswer:
    instance_version: str
    devices: list[dict[str, Any]]  # in our report's terms, in vulkaninfo's order
    extensions: list[set[str]]  # every device extension, per device


@pytest.fixture
def vulkaninfo(tmp_path: Path) -> VulkaninfoAnswer:
    """What vulkaninfo says about this machine: --summary for the properties it prints
    (formatted as vulkaninfo formats them), --json for subgroup size and features, --text
    for memory heaps (the JSON profile leaves them out)."""
    _require_tool("vulkaninfo")
    summary = _run(["vulkaninfo", "--summary"])
    instance = _search(r"^Vulkan Instance Version:\s*(\S+)", summary)
    listed = summary.split("\nDevices:", 1)[1]
    text = _run(["vulkaninfo", "--text"]).split("Device Properties and Extensions:", 1)[1]
    heaps = [_memory_heaps(section) for section in _gpu_sections(text)]
    devices, extensions = [], []
    for index, section in enumerate(_gpu_sections(listed)):
        fields = _summary_fields(section)
        profile = _profile_json(tmp_path / f"gpu{index}", index)
        properties, features = profile["properties"], profile["features"]
        core = properties["VkPhysicalDeviceProperties"]
        assert core["deviceName"] == fields["deviceName"]  # the two outputs agree
        subgroup = properties.get("VkPhysicalDeviceSubgroupProperties") or properties.get(
            "VkPhysicalDeviceVulkan11Properties", {}
        )
        devices.append(
            {
                "name": fields["deviceName"],
                "vendor_id": int(fields["vendorID"], 16),
                "device_id": int(fields["deviceID"], 16),
                "device_type": _VK_DEVICE_TYPES[fields["deviceType"]],
                "api_version": fields["apiVersion"],
                "driver_version": fields["driverVersion"],
                "driver_name": fields.get("driverName", ""),
                "driver_info": fields.get("driverInfo", ""),
                "subgroup_size": subgroup.get("subgroupSize"),
                "storage_buffer_16bit": _feature(
                    features,
                    "storageBuffer16BitAccess",
                    ("VkPhysicalDevice16BitStorageFeatures", "VkPhysicalDeviceVulkan11Features"),
                ),
                "shader_float16": _feature(
                    features,
                    "shaderFloat16",
                    (
                        "VkPhysicalDeviceShaderFloat16Int8Features",
                        "VkPhysicalDeviceVulkan12Features",
                    ),
                ),
                "memory_heaps": heaps[index],
            }
        )
        extensions.append(set(profile["extensions"]))
    return VulkaninfoAnswer(instance, devices, extensions)


def _in_process_vulkan() -> dict[str, Any]:
    return _core.probe_vulkan()


def _isolated_vulkan() -> dict[str, Any]:
    return _gpu.probe(["vulkan"], refresh=True)["vulkan"]


@pytest.mark.parametrize(
    "probe_vulkan",
    [_in_process_vulkan, _isolated_vulkan],
    ids=["in-process core", "isolated child"],
)
def test_vulkan_probe_reports_what_vulkaninfo_reports(
    vulkaninfo: VulkaninfoAnswer, probe_vulkan: Callable[[], dict[str, Any]]
) -> None:
    report = probe_vulkan()
    assert report["status"] == "ok", report["detail"]
    assert report["instance_version"] == vulkaninfo.instance_version
    assert [d["name"] for d in report["devices"]] == [d["name"] for d in vulkaninfo.devices]
    for found, expected, all_extensions in zip(
        report["devices"], vulkaninfo.devices, vulkaninfo.extensions, strict=True
    ):
        assert {key: found[key] for key in expected} == expected
        device_local = sum(h["size_bytes"] for h in expected["memory_heaps"] if h["device_local"])
        assert device_local > 0
        # The probe keeps only the extensions llama.cpp cares about; each must be real.
        assert set(found["extensions"]) <= all_extensions
        for notable in ("VK_KHR_16bit_storage", "VK_KHR_shader_float16_int8"):
            assert (notable in found["extensions"]) == (notable in all_extensions)


def test_vulkan_device_local_bytes_in_the_profile_match_vulkaninfo_heaps(
    vulkaninfo: VulkaninfoAnswer,
) -> None:
    profile = device.probe(gpu=True, bandwidth=False, refresh=True)
    assert profile.vulkan.status is ProbeStatus.OK
    assert [d.device_local_bytes for d in profile.vulkan.devices] == [
        sum(h["size_bytes"] for h in d["memory_heaps"] if h["device_local"])
        for d in vulkaninfo.devices
    ]


# ---- OpenCL against clinfo --------------------------------------------------------------


def _cl_device_type(raw: int) -> str:
    # CL_DEVICE_TYPE_GPU, _ACCELERATOR, _CPU, _CUSTOM: a device may set several bits.
    for bit, name in (
        (1 << 2, "gpu"),
        (1 << 3, "accelerator"),
        (1 << 1, "cpu"),
        (1 << 4, "custom"),
    ):
        if raw & bit:
            return name
    return "other"


def test_opencl_probe_reports_what_clinfo_reports() -> None:
    _require_tool("clinfo")
    clinfo = json.loads(_run(["clinfo", "--json"]))
    report = _core.probe_opencl()
    assert report["status"] == "ok", report["detail"]
    assert len(report["platforms"]) == len(clinfo["platforms"])
    for platform, expected, listed in zip(
        report["platforms"], clinfo["platforms"], clinfo["devices"], strict=True
    ):
        assert platform["error"] == ""
        assert (platform["name"], platform["vendor"], platform["version"]) == (
            expected["CL_PLATFORM_NAME"],
            expected["CL_PLATFORM_VENDOR"],
            expected["CL_PLATFORM_VERSION"],
        )
        online = listed["online"]
        assert len(platform["devices"]) == len(online)
        for found, cl in zip(platform["devices"], online, strict=True):
            assert {
                "name": found["name"],
                "vendor": found["vendor"],
                "vendor_id": found["vendor_id"],
                "version": found["version"],
                "driver_version": found["driver_version"],
                "opencl_c_version": found["opencl_c_version"],
                "device_type": found["device_type"],
                "global_memory_bytes": found["global_memory_bytes"],
                "max_allocation_bytes": found["max_allocation_bytes"],
                "compute_units": found["compute_units"],
                "max_clock_mhz": found["max_clock_mhz"],
                "extensions": found["extensions"],
            } == {
                "name": cl["CL_DEVICE_NAME"],
                "vendor": cl["CL_DEVICE_VENDOR"],
                "vendor_id": cl["CL_DEVICE_VENDOR_ID"],
                "version": cl["CL_DEVICE_VERSION"],
                "driver_version": cl["CL_DRIVER_VERSION"],
                "opencl_c_version": cl["CL_DEVICE_OPENCL_C_VERSION"],
                "device_type": _cl_device_type(cl["CL_DEVICE_TYPE"]["raw"]),
                "global_memory_bytes": cl["CL_DEVICE_GLOBAL_MEM_SIZE"],
                "max_allocation_bytes": cl["CL_DEVICE_MAX_MEM_ALLOC_SIZE"],
                "compute_units": cl["CL_DEVICE_MAX_COMPUTE_UNITS"],
                "max_clock_mhz": cl["CL_DEVICE_MAX_CLOCK_FREQUENCY"],
                "extensions": cl["CL_DEVICE_EXTENSIONS"].split(),
            }


def test_isolated_opencl_probe_gives_the_in_process_answer() -> None:
    _require_tool("clinfo")  # the same machine set-up as the clinfo comparison
    assert _gpu.probe(["opencl"], refresh=True)["opencl"] == _core.probe_opencl()


# ---- no loader, no driver ---------------------------------------------------------------


@pytest.fixture
def no_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Library overrides naming loaders in an empty folder, which is also the library path."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("IRIS_MODELS_VULKAN_LIBRARY", str(empty / "libvulkan.so.1"))
    monkeypatch.setenv("IRIS_MODELS_OPENCL_LIBRARY", str(empty / "libOpenCL.so.1"))
    monkeypatch.setenv("LD_LIBRARY_PATH", str(empty))
    return empty


def test_without_a_loader_both_apis_are_not_installed_and_the_process_exits_cleanly(
    no_loader: Path,
) -> None:
    code = (
        "import json, sys; from iris_models.device import _gpu; "
        "json.dump(_gpu.probe(['vulkan', 'opencl'], refresh=True), sys.stdout)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=_gpu._child_environment(),
        capture_output=True,
        text=True,
        check=False,
        timeout=SAFETY_TIMEOUT_S,
    )
    assert done.returncode == 0, done.stderr
    reports = json.loads(done.stdout)
    for api, library in (("vulkan", "libvulkan.so.1"), ("opencl", "libOpenCL.so.1")):
        assert reports[api]["status"] == "not_installed"
        assert str(no_loader / library) in reports[api]["detail"]
        assert reports[api]["library"] == ""


def test_without_a_loader_the_profile_has_no_vulkan_or_opencl_backend(no_loader: Path) -> None:
    profile = device.probe(gpu=True, bandwidth=False)
    assert profile.vulkan.status is ProbeStatus.NOT_INSTALLED
    assert profile.opencl.status is ProbeStatus.NOT_INSTALLED
    assert profile.vulkan.devices == ()
    assert profile.opencl.platforms == ()
    names = {backend.name for backend in profile.backends}
    assert "vulkan" not in names
    assert "opencl" not in names
    assert "cpu" in names


@pytest.mark.parametrize("where", ["nonexistent manifest", "empty folder"])
def test_a_loader_without_any_driver_answers_no_driver(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: str
) -> None:
    require_service(_can_load("libvulkan.so.1"), "the Vulkan loader (libvulkan1) is missing")
    require_service(_can_load("libOpenCL.so.1"), "the OpenCL ICD loader is missing")
    empty = tmp_path / "drivers"
    empty.mkdir()
    drivers = str(tmp_path / "missing.json") if where == "nonexistent manifest" else str(empty)
    monkeypatch.setenv("VK_ICD_FILENAMES", drivers)
    monkeypatch.setenv("VK_DRIVER_FILES", drivers)
    monkeypatch.setenv("OCL_ICD_VENDORS", str(empty))
    reports = _gpu.probe(["vulkan", "opencl"], refresh=True)
    assert reports["vulkan"]["status"] == "no_driver", reports["vulkan"]["detail"]
    assert reports["vulkan"]["devices"] == []
    assert reports["vulkan"]["library"]  # the loader was found
    assert reports["opencl"]["status"] == "no_driver", reports["opencl"]["detail"]
    assert reports["opencl"]["platforms"] == []
    assert reports["opencl"]["library"]


# ---- a fake driver that crashes or hangs ------------------------------------------------


@pytest.fixture(scope="session")
def fake_icd_library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    require_service(shutil.which("cc") is not None, "no C compiler (cc) to build the fake ICD")
    library = tmp_path_factory.mktemp("fake_icd") / "libfake_icd.so"
    _run(["cc", "-shared", "-fPIC", "-O1", "-o", str(library), str(FAKE_ICD_SOURCE)])
    return library


@dataclass
class FakeDriver:
    """The fake ICD installed as the only Vulkan or OpenCL driver (through the loaders'
    environment variables), and the events it recorded."""

    library: Path
    folder: Path
    marker: Path
    monkeypatch: pytest.MonkeyPatch

    def install(self, api: str, mode: str | None, manifest_name: str = "fake_icd.json") -> None:
        if api == "vulkan":
            require_service(_can_load("libvulkan.so.1"), "the Vulkan loader is missing")
            manifest = self.folder / manifest_name
            icd = {"library_path": str(self.library), "api_version": "1.3.0"}
            manifest.write_text(json.dumps({"file_format_version": "1.0.0", "ICD": icd}))
            self.monkeypatch.setenv("VK_ICD_FILENAMES", str(manifest))
            self.monkeypatch.setenv("VK_DRIVER_FILES", str(manifest))
        else:
            require_service(_can_load("libOpenCL.so.1"), "the OpenCL ICD loader is missing")
            vendors = self.folder / "vendors"
            vendors.mkdir(exist_ok=True)
            (vendors / "fake.icd").write_text(f"{self.library}\n")
            self.monkeypatch.setenv("OCL_ICD_VENDORS", str(vendors))
        if mode is None:
            self.monkeypatch.delenv("FAKE_ICD_MODE", raising=False)
        else:
            self.monkeypatch.setenv("FAKE_ICD_MODE", mode)

    def events(self) -> list[tuple[str, str, int]]:
        """(event, api, pid) for each line the driver wrote: load, crash, hang, helper."""
        if not self.marker.exists():
            return []
        lines = self.marker.read_text().splitlines()
        return [(event, api, int(pid)) for event, api, pid in (line.split() for line in lines)]

    def pids(self, event: str) -> list[int]:
        return [pid for name, _, pid in self.events() if name == event]

    def loading_processes(self) -> int:
        """How many processes loaded the driver (a loader may load it more than once)."""
        return len(set(self.pids("load")))


@pytest.fixture
def fake_driver(
    fake_icd_library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeDriver]:
    marker = tmp_path / "fake_icd_events.txt"
    monkeypatch.setenv("FAKE_ICD_MARKER", str(marker))
    driver = FakeDriver(fake_icd_library, tmp_path, marker, monkeypatch)
    yield driver
    # If the probe failed to stop a hanging driver, stop what this test started, by its id.
    for pid in driver.pids("hang") + driver.pids("helper") + driver.pids("detached"):
        if pid > 0 and not _gone(pid) and _started_by(pid, marker):
            os.kill(pid, signal.SIGKILL)


def _gone(pid: int) -> bool:
    """Whether the process has ended (a zombie awaiting its reaper counts as ended)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _started_by(pid: int, marker: Path) -> bool:
    """Whether `pid` is a probe process of this test: it runs the child module with this
    test's marker in its environment."""
    try:
        process = psutil.Process(pid)
        return CHILD_MODULE in " ".join(process.cmdline()) and process.environ().get(
            "FAKE_ICD_MARKER"
        ) == str(marker)
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False


def _live_probe_processes(marker: Path) -> list[int]:
    return [
        process.pid
        for process in psutil.process_iter()
        if process.pid != os.getpid()
        and _started_by(process.pid, marker)
        and not _gone(process.pid)
    ]


APIS = ["vulkan", "opencl"]


@pytest.mark.parametrize("api", APIS)
def test_fake_driver_in_crash_mode_kills_the_probe_process_with_sigsegv(
    fake_driver: FakeDriver, api: str
) -> None:
    """The premise of the crash tests: run directly, the child dies by SIGSEGV inside the
    fake driver, so a "crashed" answer cannot come from anything else."""
    fake_driver.install(api, "crash")
    done = _run_child(api)
    assert done.returncode == -signal.SIGSEGV
    assert done.stdout == ""
    [crashed] = fake_driver.pids("crash")
    assert crashed in fake_driver.pids("load")
    assert [(name, where) for name, where, _ in fake_driver.events()][-1] == ("crash", api)


@pytest.mark.parametrize("api", APIS)
def test_fake_driver_in_benign_mode_is_passed_over_as_no_driver(
    fake_driver: FakeDriver, api: str
) -> None:
    """The control: the same set-up without the crash is an ordinary answer, and the loader
    did load the fake driver (so the environment variables took effect)."""
    fake_driver.install(api, None)
    report = _gpu.probe([api], refresh=True)[api]
    assert report["status"] == "no_driver", report["detail"]
    assert fake_driver.loading_processes() == 1
    assert fake_driver.pids("crash") == []


@pytest.mark.parametrize("api", APIS)
def test_a_driver_that_crashes_is_reported_as_crashed_and_only_its_child_dies(
    fake_driver: FakeDriver, api: str
) -> None:
    fake_driver.install(api, "crash")
    report = _gpu.probe([api], refresh=True)[api]
    assert report["status"] == "crashed"
    assert "SIGSEGV" in report["detail"]
    assert report["devices"] == []
    assert report["platforms"] == []
    [crashed] = fake_driver.pids("crash")
    assert crashed != os.getpid()  # the crash happened in the child, not in this process
    assert _gone(crashed)


@pytest.mark.parametrize("api", APIS)
def test_a_driver_that_hangs_is_stopped_with_its_helper_and_reported_as_timed_out(
    fake_driver: FakeDriver, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    fake_driver.install(api, "hang")
    monkeypatch.setenv(_gpu.ENV_TIMEOUT, "2")
    report = _gpu.probe([api], refresh=True)[api]
    assert report["status"] == "timed_out"
    assert "2 s" in report["detail"]
    assert _gpu.ENV_TIMEOUT in report["detail"]
    # The child reached the driver and hung there; it and the helper it forked are gone.
    [hung] = fake_driver.pids("hang")
    [helper] = fake_driver.pids("helper")
    assert hung != os.getpid()
    assert _gone(hung)
    assert _gone(helper)
    assert _live_probe_processes(fake_driver.marker) == []


def test_a_detached_driver_process_holding_the_output_does_not_keep_the_probe_waiting(
    fake_driver: FakeDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_driver.install("vulkan", "detach")
    monkeypatch.setenv(_gpu.ENV_TIMEOUT, "1")
    report = _gpu.probe(["vulkan"], refresh=True)["vulkan"]
    assert report["status"] == "timed_out"
    # The detached process still holds the probe's stdout and stderr (it lives 30 s): had the
    # probe waited for that output to close, it would have returned only after it exited.
    [detached] = fake_driver.pids("detached")
    assert not _gone(detached)


def test_a_crash_in_one_api_leaves_the_others_answers_intact(fake_driver: FakeDriver) -> None:
    require_service(_can_load("libOpenCL.so.1"), "the OpenCL ICD loader is missing")
    fake_driver.install("vulkan", "crash")  # OpenCL keeps this machine's own drivers
    reports = _gpu.probe(["vulkan", "opencl"], refresh=True)
    assert reports["vulkan"]["status"] == "crashed"
    assert reports["opencl"] == _core.probe_opencl()


# ---- the cache --------------------------------------------------------------------------


def test_a_crash_is_cached_so_the_driver_is_not_loaded_again_until_refresh(
    fake_driver: FakeDriver,
) -> None:
    fake_driver.install("vulkan", "crash")
    first = _gpu.probe(["vulkan"])["vulkan"]
    assert first["status"] == "crashed"
    assert fake_driver.loading_processes() == 1
    assert _cache.cache_file("gpu-vulkan").is_file()

    again = _gpu.probe(["vulkan"])["vulkan"]
    assert again == first
    assert fake_driver.loading_processes() == 1  # answered from the cache: no child ran

    refreshed = _gpu.probe(["vulkan"], refresh=True)["vulkan"]
    assert refreshed["status"] == "crashed"
    assert fake_driver.loading_processes() == 2


def test_changing_vk_icd_filenames_invalidates_the_cached_answer(
    fake_driver: FakeDriver,
) -> None:
    fake_driver.install("vulkan", "crash")
    assert _gpu.probe(["vulkan"])["vulkan"]["status"] == "crashed"
    assert fake_driver.loading_processes() == 1
    fake_driver.install("vulkan", "crash", manifest_name="same_driver_elsewhere.json")
    assert _gpu.probe(["vulkan"])["vulkan"]["status"] == "crashed"
    assert fake_driver.loading_processes() == 2


def test_a_timeout_is_cached_too(fake_driver: FakeDriver, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_driver.install("opencl", "hang")
    monkeypatch.setenv(_gpu.ENV_TIMEOUT, "2")
    first = _gpu.probe(["opencl"])["opencl"]
    assert first["status"] == "timed_out"
    assert _gpu.probe(["opencl"])["opencl"] == first
    assert fake_driver.loading_processes() == 1


@pytest.mark.parametrize(
    "garbage",
    [b"\xff\xfe\x00\x81 not text", b'{"format": 1, "fingerprint": "', b"[1, 2]", b""],
    ids=["binary", "truncated JSON", "JSON of the wrong shape", "empty"],
)
def test_a_corrupt_cache_file_is_ignored_and_replaced(
    fake_driver: FakeDriver, garbage: bytes
) -> None:
    fake_driver.install("vulkan", "crash")
    cache = _cache.cache_file("gpu-vulkan")
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(garbage)
    report = _gpu.probe(["vulkan"])["vulkan"]
    assert report["status"] == "crashed"
    assert fake_driver.loading_processes() == 1  # probed: the garbage was not taken as an answer
    assert json.loads(cache.read_text(encoding="utf-8"))["value"] == report


# ---- the whole profile on this machine --------------------------------------------------


def test_this_machines_profile_lists_lavapipe_and_pocl_as_cpu_devices_not_usable_gpus() -> None:
    require_service(
        any(Path("/usr/share/vulkan/icd.d").glob("lvp_icd*.json")),
        "Mesa's lavapipe Vulkan driver (mesa-vulkan-drivers) is missing",
    )
    require_service(
        Path("/etc/OpenCL/vendors/pocl.icd").exists(), "PoCL (pocl-opencl-icd) is missing"
    )
    profile = device.probe(gpu=True, bandwidth=False)

    assert profile.vulkan.status is ProbeStatus.OK
    [lavapipe] = [d for d in profile.vulkan.devices if d.driver_name == "llvmpipe"]
    assert lavapipe.name.startswith("llvmpipe")
    assert lavapipe.device_type == "cpu"
    [vulkan_backend] = [
        b for b in profile.backends if b.name == "vulkan" and b.device == lavapipe.name
    ]
    assert not vulkan_backend.usable
    assert vulkan_backend.reason == "a cpu device, not a GPU"

    assert profile.opencl.status is ProbeStatus.OK
    [pocl] = [p for p in profile.opencl.platforms if p.name == "Portable Computing Language"]
    assert pocl.devices
    for pocl_device in pocl.devices:
        assert pocl_device.device_type == "cpu"
        [opencl_backend] = [
            b for b in profile.backends if b.name == "opencl" and b.device == pocl_device.name
        ]
        assert not opencl_backend.usable
        assert opencl_backend.reason == "a cpu device, not a GPU"

    restored = DeviceProfile.from_json(profile.to_json())
    assert restored == profile
    assert restored.backends == profile.backends
    assert restored.device_class == profile.device_class
