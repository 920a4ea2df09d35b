"""Speed of iris_models.device.probe() against the tools people run to learn the same facts.

Times, each in fresh Python processes (so the first call pays what a real first call pays):
the CPU part of probe() (no GPU, no bandwidth), the whole probe cold (empty cache: GPU child
processes and the bandwidth measurement included) and probe() again with a warm cache; next
to ``lscpu --json`` for the CPU facts and ``vulkaninfo --summary`` + ``clinfo`` for the GPU
facts. Then the measured memory read bandwidth next to numpy reading the same buffer size.

Run it from the repository root (not collected by pytest; about a minute on two cores)::

    pip install -e .
    python benchmarks/bench_device.py --runs 5 --json device.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from _tables import format_table

TARGET_CPU_PART_MS = 20.0
TARGET_COLD_MS = 1000.0
TARGET_CACHED_MS = 25.0  # "instant when cached": the CPU part plus reading two cache files

# Runs in a fresh interpreter; prints the milliseconds the call itself took.
_TIMED_CALL = """
import json, sys, time
from iris_models import device
kwargs = json.loads(sys.argv[1])
start = time.perf_counter()
profile = device.probe(**kwargs)
print((time.perf_counter() - start) * 1000)
"""


def progress(message: str) -> None:
    sys.stdout.flush()
    print(message, file=sys.stderr, flush=True)


def probe_in_fresh_process(kwargs: dict[str, Any], cache_dir: Path) -> float:
    env = dict(os.environ, IRIS_MODELS_CACHE_DIR=str(cache_dir))
    done = subprocess.run(
        [sys.executable, "-c", _TIMED_CALL, json.dumps(kwargs)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


def command_ms(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, capture_output=True, check=False, cwd=tempfile.gettempdir())
    return (time.perf_counter() - start) * 1000


def median_of(runs: int, measure: Any) -> tuple[float, float]:
    samples = [measure() for _ in range(runs)]
    return statistics.median(samples), min(samples)


def row(name: str, median: float, minimum: float, ratio: str, target: str, met: str) -> list[str]:
    return [name, f"{median:.1f}", f"{minimum:.1f}", ratio, target, met]


def timing_tables(runs: int, results: dict[str, Any]) -> None:
    headers = ["what", "median ms", "min ms", "ratio peer/ours", "target", "met?"]
    with tempfile.TemporaryDirectory(prefix="iris-bench-device-") as scratch:
        scratch_path = Path(scratch)

        progress("timing the CPU part of probe() in fresh processes ...")
        cpu = median_of(
            runs,
            lambda: probe_in_fresh_process({"gpu": False, "bandwidth": False}, scratch_path),
        )
        lscpu = (
            median_of(runs, lambda: command_ms(["lscpu", "--json"]))
            if shutil.which("lscpu")
            else None
        )

        progress("timing the whole probe cold (empty cache) ...")
        cold_samples = []
        for run in range(runs):
            cache = scratch_path / f"cold-{run}"
            cold_samples.append(probe_in_fresh_process({}, cache))
        cold = statistics.median(cold_samples), min(cold_samples)
        warm_cache = scratch_path / "cold-0"
        progress("timing probe() with a warm cache ...")
        cached = median_of(runs, lambda: probe_in_fresh_process({}, warm_cache))
        gpu_only = []
        for run in range(runs):
            cache = scratch_path / f"gpu-{run}"
            gpu_only.append(probe_in_fresh_process({"bandwidth": False}, cache))
        gpu_part = statistics.median(gpu_only), min(gpu_only)

        tools = [tool for tool in ("vulkaninfo", "clinfo") if shutil.which(tool)]
        peer_gpu = None
        if tools:
            progress(f"timing {' + '.join(tools)} ...")

            def run_tools() -> float:
                total = 0.0
                if "vulkaninfo" in tools:
                    total += command_ms(["vulkaninfo", "--summary"])
                if "clinfo" in tools:
                    total += command_ms(["clinfo"])
                return total

            peer_gpu = median_of(runs, run_tools)

    rows = [
        row(
            "probe(gpu=False, bandwidth=False) [CPU part]",
            *cpu,
            "-",
            "< 20 ms",
            "yes" if cpu[0] < TARGET_CPU_PART_MS else "no",
        ),
    ]
    if lscpu:
        rows.append(row("  peer: lscpu --json", *lscpu, f"{lscpu[0] / cpu[0]:.1f}x", "-", "-"))
    rows.append(row("probe(bandwidth=False), empty cache [CPU + GPUs]", *gpu_part, "-", "-", "-"))
    if peer_gpu:
        label = "  peer: " + " + ".join(
            f"{t}{' --summary' if t == 'vulkaninfo' else ''}" for t in tools
        )
        rows.append(row(label, *peer_gpu, f"{peer_gpu[0] / gpu_part[0]:.1f}x", "-", "-"))
    rows.append(
        row(
            "probe(), empty cache [whole probe, cold]",
            *cold,
            "-",
            "< 1000 ms",
            "yes" if cold[0] < TARGET_COLD_MS else "no",
        )
    )
    rows.append(
        row(
            "probe(), warm cache",
            *cached,
            "-",
            "< 25 ms",
            "yes" if cached[0] < TARGET_CACHED_MS else "no",
        )
    )
    print(format_table(headers, rows))
    results["timings_ms"] = {
        "cpu_part": cpu,
        "lscpu": lscpu,
        "gpu_part_cold": gpu_part,
        "gpu_tools": peer_gpu,
        "whole_cold": cold,
        "cached": cached,
    }


def bandwidth_table(results: dict[str, Any]) -> None:
    from iris_models import _core
    from iris_models.device._host import cpu_facts

    threads = cpu_facts()["physical_cores"]
    buffer_bytes = 128 << 20
    progress("measuring memory read bandwidth ...")
    ours = _core.measure_read_bandwidth(threads, buffer_bytes, 0.2)
    one = _core.measure_read_bandwidth(1, buffer_bytes, 0.2)
    words = np.arange(buffer_bytes // 8, dtype=np.uint64)
    sums = []
    for _ in range(10):
        start = time.perf_counter()
        words.sum()
        sums.append(time.perf_counter() - start)
    numpy_gbps = buffer_bytes / min(sums) / 1e9
    ours_gbps = ours["read_bytes_per_s"] / 1e9
    one_gbps = one["read_bytes_per_s"] / 1e9
    headers = ["reader (128 MiB buffer, best pass)", "GB/s", "ratio vs numpy"]
    rows = [
        [
            f"iris-models, {threads} threads (what probe() stores)",
            f"{ours_gbps:.1f}",
            f"{ours_gbps / numpy_gbps:.2f}x",
        ],
        ["iris-models, 1 thread", f"{one_gbps:.1f}", f"{one_gbps / numpy_gbps:.2f}x"],
        ["numpy uint64 sum, 1 thread", f"{numpy_gbps:.1f}", "1.00x"],
    ]
    print(format_table(headers, rows))
    print(f"(measurement took {ours['elapsed_s'] * 1000:.0f} ms, {ours['passes']} passes)")
    results["bandwidth_gbps"] = {
        "ours": ours_gbps,
        "ours_one_thread": one_gbps,
        "numpy": numpy_gbps,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per timing")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    results: dict[str, Any] = {"cpu_count": os.cpu_count()}
    timing_tables(args.runs, results)
    print()
    bandwidth_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
