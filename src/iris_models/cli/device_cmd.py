"""Show what this device is and can run: CPU, memory, storage, SoC, GPUs (Vulkan, OpenCL,
CUDA, Metal), NPUs, the usable backends and the device class. --profile shows a saved or
shipped profile instead (--list-profiles names the shipped ones); --set overrides a field."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ._output import format_bytes, out_console, print_json

if TYPE_CHECKING:
    from ..device import DeviceProfile

__all__ = ["configure", "run"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        metavar="FILE|NAME",
        help="show a profile from a JSON file or a shipped one, instead of probing "
        "(default: IRIS_MODELS_DEVICE_PROFILE, else probe this machine)",
    )
    parser.add_argument(
        "--list-profiles", action="store_true", help="list the shipped profiles and exit"
    )
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="override a field, e.g. memory.total_bytes=8GiB or device_class=BUDGET (repeatable)",
    )
    parser.add_argument(
        "--refresh", action="store_true", help="probe GPUs and bandwidth again, not from cache"
    )
    parser.add_argument("--json", action="store_true", help="print the profile as JSON")


def run(args: argparse.Namespace) -> int:
    from .. import device
    from ..device._overrides import parse_assignment

    if args.list_profiles:
        names = device.shipped_profiles()
        if args.json:
            print_json(names)
        else:
            for name in names:
                out_console.print(name, markup=False)
        return 0
    overrides = dict(parse_assignment(text) for text in args.assignments)
    profile = device.current(args.profile, overrides=overrides, refresh=args.refresh)
    if args.json:
        print_json(profile.to_dict())
    else:
        _print_profile(profile)
    return 0


def _print_profile(profile: DeviceProfile) -> None:
    from rich.table import Table
    from rich.text import Text

    from ..device import ProbeStatus, isa_level

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()

    def row(label: str, value: str) -> None:
        table.add_row(label, Text(value))

    cpu, memory = profile.cpu, profile.memory
    reasons = "; ".join(profile.device_class_reasons)
    row("Device class", f"{profile.device_class.value} ({reasons})")
    release = f" {profile.os.release}" if profile.os.release else ""
    api = f", API {profile.os.android_api_level}" if profile.os.android_api_level else ""
    row("OS", f"{profile.os.system}{release}{api} ({profile.os.machine or cpu.architecture})")
    brand = f"{cpu.brand}, " if cpu.brand else ""
    row(
        "CPU",
        f"{brand}{cpu.architecture}, {isa_level(cpu)}, "
        f"{cpu.logical_cores} logical / {cpu.physical_cores} physical cores",
    )
    if cpu.features:
        row("", "features: " + " ".join(cpu.features))
    if len(cpu.clusters) > 1 or any(c.max_frequency_khz for c in cpu.clusters):
        clusters = ", ".join(
            f"{len(c.cpus)} x {c.max_frequency_khz / 1e6:.2f} GHz" for c in cpu.clusters
        )
        row("", f"clusters: {clusters}")
    line = f"{format_bytes(memory.total_bytes)} total"
    if memory.available_bytes is not None:
        line += f", {format_bytes(memory.available_bytes)} available"
    if memory.bandwidth_bytes_per_s:
        line += f", read bandwidth {format_bytes(memory.bandwidth_bytes_per_s)}/s"
        line += f" ({memory.bandwidth_source})" if memory.bandwidth_source else ""
    row("Memory", line)
    storage = profile.storage
    if storage.free_bytes is not None:
        where = f" at {storage.path}" if storage.path else ""
        row(
            "Storage",
            f"{format_bytes(storage.free_bytes)} free of {format_bytes(storage.total_bytes)}{where}",
        )
    soc = profile.soc
    soc_parts = [part for part in (soc.vendor, soc.name or soc.model, soc.board_platform) if part]
    row("SoC", ", ".join(soc_parts) if soc_parts else "not identified")

    def api_line(status: ProbeStatus, detail: str, devices: list[str]) -> str:
        if status is ProbeStatus.OK:
            return "; ".join(devices) if devices else "ok, no devices"
        text = status.value.replace("_", " ")
        return f"{text}: {detail}" if detail and status is not ProbeStatus.NOT_INSTALLED else text

    vulkan = profile.vulkan
    row(
        "Vulkan",
        api_line(
            vulkan.status,
            vulkan.detail,
            [
                f"{d.name} ({d.device_type}, Vulkan {d.api_version or '?'}, "
                f"{format_bytes(d.device_local_bytes or None)})"
                for d in vulkan.devices
            ],
        ),
    )
    opencl = profile.opencl
    row(
        "OpenCL",
        api_line(
            opencl.status,
            opencl.detail,
            [
                f"{d.name} ({d.device_type}, {d.opencl_c_version or d.version})"
                for d in opencl.devices
            ],
        ),
    )
    cuda = profile.cuda
    row(
        "CUDA",
        api_line(
            cuda.status,
            cuda.detail,
            [
                f"{d.name} (sm {d.compute_capability}, {format_bytes(d.memory_bytes)})"
                for d in cuda.devices
            ],
        ),
    )
    row("Metal", "available" if profile.metal.available else "no")
    npus = [f"{npu.name or npu.runtime} ({npu.runtime})" for npu in profile.npus]
    row("NPU", "; ".join(npus) if npus else "none found")
    for index, backend in enumerate(profile.backends):
        mark = "usable" if backend.usable else "not usable"
        device_name = f" {backend.device}" if backend.device else ""
        row(
            "Backends" if index == 0 else "",
            f"{backend.name}{device_name}: {mark}, {backend.reason}",
        )
    if profile.overrides:
        row("Overridden", ", ".join(path for path, _ in profile.overrides))
    out_console.print(Text(f"{profile.name}: {profile.description}", style="bold"))
    out_console.print(table)
    if profile.sources:
        out_console.print(Text("Sources:", style="bold"))
        for source in profile.sources:
            out_console.print(Text(f"  {source.url}"), soft_wrap=True)
