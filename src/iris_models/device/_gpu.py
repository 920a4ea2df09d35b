"""GPU probing, isolated: each API (Vulkan, OpenCL, CUDA) is probed in a child process of
its own, with a timeout, and the answers are cached.

A driver that crashes (SIGSEGV in the loader) or hangs (a wedged kernel module) takes only
its child down; the parent reports ``crashed`` or ``timed_out`` for that API and goes on.
Results, failures included, are cached until the boot, the driver files or the relevant
environment change, so a hanging driver costs its timeout once, not at every start.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from . import _cache
from ._gpu_child import APIS, run_probe

if TYPE_CHECKING:
    import subprocess

ENV_TIMEOUT = "IRIS_MODELS_GPU_PROBE_TIMEOUT_S"
# For embedded interpreters whose sys.executable cannot start a child (an app's Python): probe
# in this process, without the isolation.
ENV_IN_PROCESS = "IRIS_MODELS_GPU_PROBE_IN_PROCESS"
DEFAULT_TIMEOUT_S = 5.0
MAX_TIMEOUT_S = 600.0

# What a GPU probe's answer depends on besides the boot: the loaders' configuration.
_ENV_INPUTS = (
    "VK_ICD_FILENAMES",
    "VK_DRIVER_FILES",
    "VK_ADD_DRIVER_FILES",
    "VK_LOADER_DRIVERS_SELECT",
    "VK_LOADER_DRIVERS_DISABLE",
    "OCL_ICD_VENDORS",
    "OCL_ICD_FILENAMES",
    "OPENCL_VENDOR_PATH",
    "CUDA_VISIBLE_DEVICES",
    "LD_LIBRARY_PATH",
    "IRIS_MODELS_VULKAN_LIBRARY",
    "IRIS_MODELS_OPENCL_LIBRARY",
    "IRIS_MODELS_CUDA_LIBRARY",
)
_DRIVER_DIRS = (
    "/usr/share/vulkan/icd.d",
    "/etc/vulkan/icd.d",
    "/usr/local/share/vulkan/icd.d",
    "/etc/OpenCL/vendors",
    "/proc/driver/nvidia",
)


def timeout_s() -> float:
    text = os.environ.get(ENV_TIMEOUT)
    if not text:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        return DEFAULT_TIMEOUT_S
    if not math.isfinite(value) or value <= 0:
        return DEFAULT_TIMEOUT_S
    return min(value, MAX_TIMEOUT_S)


def _stat_tree(directory: str) -> list[tuple[str, int, int]]:
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError:
        return []
    found = []
    for entry in entries:
        with contextlib.suppress(OSError):
            info = entry.stat()
            found.append((entry.name, info.st_size, info.st_mtime_ns))
    return found


def fingerprint_inputs() -> dict[str, Any]:
    """What every API's answer depends on: read once per probe, shared by the three keys."""
    from .. import _core

    # The compiled core's identity stands for the package version (reading the version from
    # the package metadata costs 20 ms; a rebuilt or upgraded core changes size or mtime).
    core = Path(_core.__file__).stat()
    return {
        "core": [core.st_size, core.st_mtime_ns],
        "python": sys.executable,
        "boot": _cache.boot_marker(),
        "env": {name: os.environ.get(name) for name in _ENV_INPUTS},
        "drivers": {directory: _stat_tree(directory) for directory in _DRIVER_DIRS},
    }


def fingerprint(api: str, inputs: dict[str, Any] | None = None) -> str:
    return _cache.fingerprint({"api": api, **(inputs or fingerprint_inputs())})


def _child_environment() -> dict[str, str]:
    # The child must import this same package, wherever it was imported from.
    package_parent = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    return env


def _signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _failure(status: str, detail: str) -> dict[str, Any]:
    return {"status": status, "detail": detail, "library": "", "devices": [], "platforms": []}


@dataclass
class _Child:
    process: subprocess.Popen[bytes]
    # Files, not pipes: a process the driver started (and detached) may keep the output open
    # long after the probe process is gone, and reading a pipe would wait for it.
    stdout: IO[bytes]
    stderr: IO[bytes]


def _start(api: str, env: dict[str, str]) -> _Child:
    # Imported here: a probe answered from the cache never starts a process, and these
    # imports would be most of its cost.
    import subprocess
    import tempfile

    # Owned by the returned _Child and closed by _collect, so no context manager here.
    stdout = tempfile.TemporaryFile()  # noqa: SIM115
    stderr = tempfile.TemporaryFile()  # noqa: SIM115
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "iris_models.device._gpu_child", api],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            env=env,
            start_new_session=True,
        )
    except OSError:
        stdout.close()
        stderr.close()
        raise
    return _Child(process, stdout, stderr)


def _collect(api: str, child: _Child, deadline: float) -> dict[str, Any]:
    with child.stdout, child.stderr:
        return _report(api, child, deadline)


def _await_group_exit(group: int, timeout_s: float) -> None:
    """Waits until no process of the killed group is left (SIGKILL is delivered at once, but
    the processes take a moment to die), so that none outlives the probe's answer. Zombies
    that nobody reaps still count as members: the wait is bounded."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.005)


def _report(api: str, child: _Child, deadline: float) -> dict[str, Any]:
    import signal
    import subprocess

    label = {"vulkan": "Vulkan", "opencl": "OpenCL", "cuda": "CUDA"}[api]
    process = child.process
    try:
        process.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        # The child leads its own process group: take down anything the driver started too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=1.0)  # SIGKILL cannot be ignored; only a kernel hang stays
        _await_group_exit(process.pid, timeout_s=1.0)
        return _failure(
            "timed_out",
            f"the {label} probe did not finish within {timeout_s():g} s and was stopped; a "
            f"driver is hanging (raise {ENV_TIMEOUT} if this machine is just slow)",
        )
    if process.returncode < 0:
        return _failure(
            "crashed",
            f"the {label} probe process was killed by {_signal_name(-process.returncode)}; "
            "a driver crashed while it was being queried",
        )
    child.stderr.seek(0)
    tail = child.stderr.read(1 << 16).decode(errors="replace").strip().splitlines()[-3:]
    if process.returncode != 0:
        return _failure(
            "error",
            f"the {label} probe process exited with status {process.returncode}: "
            + " / ".join(tail),
        )
    child.stdout.seek(0)
    try:
        report = json.loads(child.stdout.read(16 << 20))
    except ValueError:
        return _failure("error", f"the {label} probe printed no report: " + " / ".join(tail))
    if not isinstance(report, dict) or "status" not in report:
        return _failure("error", f"the {label} probe printed a malformed report")
    return report


def probe(apis: Iterable[str] = APIS, *, refresh: bool = False) -> dict[str, dict[str, Any]]:
    """Reports for `apis`, from the cache where it is still valid, else from child processes
    that all run at once."""
    reports: dict[str, dict[str, Any]] = {}
    inputs = fingerprint_inputs()
    keys = {api: fingerprint(api, inputs) for api in apis}
    pending = []
    for api, key in keys.items():
        cached = None if refresh else _cache.load(f"gpu-{api}", key)
        if isinstance(cached, dict):
            reports[api] = cached
        else:
            pending.append(api)
    if pending and os.environ.get(ENV_IN_PROCESS) == "1":
        for api in pending:
            reports[api] = run_probe(api)
            _cache.store(f"gpu-{api}", keys[api], reports[api])
    elif pending:
        env = _child_environment()
        deadline = time.monotonic() + timeout_s()
        children: dict[str, _Child] = {}
        for api in pending:
            try:
                children[api] = _start(api, env)
            except OSError as error:
                # Not cached: nothing was learnt about the drivers.
                reports[api] = _failure(
                    "error",
                    f"cannot start the isolated probe process ({sys.executable!r}: "
                    f"{error.strerror or error}); set {ENV_IN_PROCESS}=1 to probe in-process",
                )
        for api, child in children.items():
            reports[api] = _collect(api, child, deadline)
            _cache.store(f"gpu-{api}", keys[api], reports[api])
    return {api: reports[api] for api in keys}
