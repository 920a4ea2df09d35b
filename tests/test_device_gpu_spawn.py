"""How the GPU probe behaves where no child process can be started (an embedded interpreter
whose sys.executable is not a runnable Python), and its in-process escape hatch."""

from __future__ import annotations

import sys

import pytest

from iris_models import _core
from iris_models.device import _cache, _gpu


def test_unstartable_child_is_reported_as_an_error_naming_the_way_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    reports = _gpu.probe(["vulkan", "opencl"], refresh=True)
    for report in reports.values():
        assert report["status"] == "error"
        assert "/nonexistent/python" in report["detail"]
        assert _gpu.ENV_IN_PROCESS in report["detail"]
    # Nothing was learnt about the drivers, so nothing may be cached.
    assert _cache.load("gpu-vulkan", _gpu.fingerprint("vulkan")) is None


def test_in_process_mode_gives_the_same_answer_as_the_isolated_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    isolated = _gpu.probe(["vulkan", "opencl", "cuda"], refresh=True)
    monkeypatch.setenv(_gpu.ENV_IN_PROCESS, "1")
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")  # proves no child is used
    in_process = _gpu.probe(["vulkan", "opencl", "cuda"], refresh=True)
    assert in_process == isolated
    assert in_process["cuda"] == _core.probe_cuda()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2.5", 2.5),
        ("", _gpu.DEFAULT_TIMEOUT_S),
        ("soon", _gpu.DEFAULT_TIMEOUT_S),
        ("0", _gpu.DEFAULT_TIMEOUT_S),
        ("-3", _gpu.DEFAULT_TIMEOUT_S),
        ("nan", _gpu.DEFAULT_TIMEOUT_S),
        ("inf", _gpu.DEFAULT_TIMEOUT_S),
        ("1e12", _gpu.MAX_TIMEOUT_S),
    ],
)
def test_timeout_setting_is_finite_positive_and_bounded(
    monkeypatch: pytest.MonkeyPatch, text: str, expected: float
) -> None:
    monkeypatch.setenv(_gpu.ENV_TIMEOUT, text)
    assert _gpu.timeout_s() == expected
