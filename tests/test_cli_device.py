"""`iris-models device`: shipped profiles as text and JSON, --list-profiles, --set overrides,
one-line errors, IRIS_MODELS_DEVICE_PROFILE, and this machine probed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from tests.cli_helpers import assert_one_line_error, run_cli

from iris_models import device
from iris_models.device import DeviceProfile, _overrides

GIB = 1 << 30


@pytest.fixture(autouse=True)
def _no_profile_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own profile or overrides must not leak into these tests."""
    monkeypatch.delenv(device.ENV_PROFILE, raising=False)
    monkeypatch.delenv(_overrides.ENV_OVERRIDES, raising=False)


def backends_section(out: str) -> str:
    """The text of the "Backends" rows, whitespace collapsed (long rows wrap)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Backends"))
    texts = []
    for line in lines[start:]:
        label, text = line[:14], line[14:]
        if label.strip() not in ("", "Backends"):
            break
        texts.append(text)
    return " ".join(" ".join(texts).split())


@pytest.mark.parametrize("name", device.shipped_profiles())
def test_profile_text_shows_the_class_and_every_backend(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    profile = device.load_profile(name)
    status, out, err = run_cli(capsys, "device", "--profile", name)
    assert status == 0, err
    assert err == ""
    assert out.startswith(f"{name}: ")
    assert re.search(rf"^Device class\s+{profile.device_class.value} \(", out, re.MULTILINE)
    section = backends_section(out)
    for backend in profile.backends:
        mark = "usable" if backend.usable else "not usable"
        on = f" {backend.device}" if backend.device else ""
        row = f"{backend.name}{on}: {mark}, {backend.reason}"
        assert " ".join(row.split()) in section
    assert section.count("usable,") == len(profile.backends)
    assert "Sources:" in out
    assert profile.sources[0].url in out
    assert "Overridden" not in out


@pytest.mark.parametrize("name", device.shipped_profiles())
def test_profile_json_is_the_profiles_dict(capsys: pytest.CaptureFixture[str], name: str) -> None:
    status, out, err = run_cli(capsys, "device", "--profile", name, "--json")
    assert status == 0, err
    assert json.loads(out) == device.load_profile(name).to_dict()


def test_list_profiles_text_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "device", "--list-profiles")
    assert status == 0
    assert out.splitlines() == device.shipped_profiles()
    assert len(out.splitlines()) == 7
    status, out, _ = run_cli(capsys, "device", "--list-profiles", "--json")
    assert status == 0
    assert json.loads(out) == device.shipped_profiles()


def test_set_changes_the_class_and_is_listed_as_overridden(
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = ("device", "--profile", "snapdragon-flagship-phone", "--set", "memory.total_bytes=4GiB")
    status, out, err = run_cli(capsys, *args, "--json")
    assert status == 0, err
    document = json.loads(out)
    assert document["memory"]["total_bytes"] == 4 * GIB
    assert document["overrides"] == {"memory.total_bytes": 4 * GIB}
    assert document["device_class"] == "BUDGET"
    assert DeviceProfile.from_dict(document).device_class.value == "BUDGET"
    status, out, err = run_cli(capsys, *args)
    assert status == 0, err
    assert re.search(r"^Device class\s+BUDGET \(", out, re.MULTILINE)
    assert re.search(r"^Overridden\s+memory\.total_bytes\s*$", out, re.MULTILINE)


def test_set_is_repeatable_and_device_class_can_be_forced(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run_cli(
        capsys,
        "device",
        "--profile",
        "budget-android-phone",
        "--set",
        "memory.total_bytes=16GiB",
        "--set",
        "device_class=HIGH_END",
        "--set",
        'cpu.features=["neon","dotprod","i8mm"]',
        "--json",
    )
    assert status == 0, err
    document = json.loads(out)
    assert document["device_class"] == "HIGH_END"
    assert document["device_class_reasons"] == ["set by an override"]
    assert document["cpu"]["features"] == ["neon", "dotprod", "i8mm"]
    assert list(document["overrides"]) == ["memory.total_bytes", "device_class", "cpu.features"]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(("--set", "noequals"), "expected PATH=VALUE", id="set-without-equals"),
        pytest.param(("--set", "=5"), "expected PATH=VALUE", id="set-without-path"),
        pytest.param(("--set", "memory.colour=red"), "no field 'colour'", id="set-unknown-field"),
        pytest.param(
            ("--set", "memory.total_bytes=lots"),
            "memory.total_bytes: expected an integer",
            id="set-wrong-type",
        ),
        pytest.param(
            ("--set", "device_class=ULTRA"),
            "BUDGET, MID_RANGE, HIGH_END, FLAGSHIP",
            id="set-bad-device-class",
        ),
    ],
)
def test_bad_set_is_one_line_error(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], expected: str
) -> None:
    status, out, err = run_cli(capsys, "device", "--profile", "raspberry-pi-5", *args)
    assert_one_line_error(status, out, err, expected)


def test_unknown_profile_is_one_line_error_listing_the_known(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run_cli(capsys, "device", "--profile", "pocket-calculator")
    assert_one_line_error(status, out, err, "no device profile 'pocket-calculator'")
    for name in device.shipped_profiles():
        assert name in err


def test_missing_or_broken_profile_file_is_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, err = run_cli(capsys, "device", "--profile", str(tmp_path / "missing.json"))
    assert_one_line_error(status, out, err, "cannot read device profile")
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    status, out, err = run_cli(capsys, "device", "--profile", str(broken))
    assert_one_line_error(status, out, err, "not valid JSON")


def test_bad_env_overrides_are_one_line_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(_overrides.ENV_OVERRIDES, "{nope")
    status, out, err = run_cli(capsys, "device", "--profile", "x86-laptop")
    assert_one_line_error(status, out, err, _overrides.ENV_OVERRIDES)


def test_env_profile_is_shown_and_profile_option_wins(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(device.ENV_PROFILE, "raspberry-pi-5")
    status, out, err = run_cli(capsys, "device", "--json")
    assert status == 0, err
    assert json.loads(out) == device.load_profile("raspberry-pi-5").to_dict()
    status, out, err = run_cli(capsys, "device", "--json", "--profile", "x86-laptop")
    assert status == 0, err
    assert json.loads(out)["name"] == "x86-laptop"


def test_env_profile_file_with_set(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    device.load_profile("gpu-workstation").save(tmp_path / "box.json")
    monkeypatch.setenv(device.ENV_PROFILE, str(tmp_path / "box.json"))
    status, out, err = run_cli(capsys, "device", "--json", "--set", "cpu.logical_cores=2")
    assert status == 0, err
    document = json.loads(out)
    assert document["name"] == "gpu-workstation"
    assert document["device_class"] == "BUDGET"


def test_this_machine_without_gpu_probe(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(device.ENV_NO_GPU, "1")
    status, out, err = run_cli(capsys, "device", "--json")
    assert status == 0, err
    document = json.loads(out)
    profile = DeviceProfile.from_dict(document)
    assert profile.to_dict() == document
    assert profile.name == "this-device"
    for api in ("vulkan", "opencl", "cuda"):
        assert document[api]["status"] == "skipped"
    assert document["memory"]["bandwidth_source"] == "measured"
    assert document["memory"]["bandwidth_bytes_per_s"] > 0
    status, out, err = run_cli(capsys, "device", "--set", "memory.total_bytes=2GiB")
    assert status == 0, err
    assert out.startswith("this-device: probed on this machine")
    assert re.search(r"^Device class\s+BUDGET \(2\.0 GiB RAM", out, re.MULTILINE)
    assert re.search(r"^Vulkan\s+skipped\s*$", out, re.MULTILINE)


def test_this_machine_with_gpu_probe(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(device.ENV_NO_GPU, raising=False)
    status, out, err = run_cli(capsys, "device", "--json")
    assert status == 0, err
    document = json.loads(out)
    profile = DeviceProfile.from_dict(document)
    assert profile.to_dict() == document
    for api in ("vulkan", "opencl", "cuda"):
        assert document[api]["status"] != "skipped"


def test_console_script_device_command() -> None:
    executable = shutil.which("iris-models")
    assert executable is not None, "the iris-models console script is not installed"
    result = subprocess.run(
        [executable, "device", "--profile", "raspberry-pi-5", "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["device_class"] == "MID_RANGE"
    failed = subprocess.run(
        [executable, "device", "--set", "nonsense"], capture_output=True, text=True, check=False
    )
    assert failed.returncode == 1
    assert failed.stdout == ""
    assert failed.stderr.startswith("iris-models: error: ")
    assert failed.stderr.count("\n") == 1
