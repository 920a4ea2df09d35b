"""Throughput and memory benchmark of iris_models.verify against the hashers people already use.

Times SHA-256 over a 1 GiB page-cached file (ours, ``openssl dgst``, coreutils ``sha256sum``,
``hashlib``), manifest builds and parallel manifest checks, four files verified together
against one at a time, and the xxh128/BLAKE3 seals; prints ratio tables against the issue's
targets, and each operation's peak memory growth in a fresh process at two file sizes.

Run it from the repository root (not collected by pytest; about two minutes on two cores)::

    pip install -e . xxhash blake3
    python benchmarks/bench_verify.py --size-mib 1024 --repeats 5 --json verify.json
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import mmap
import os
import platform
import resource
import shutil
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np

from _proc_status import STATUS_KEYS, memory_status_kib, reset_peak_rss
from _tables import format_table

MIB = 1 << 20
GB = 1e9  # throughput is reported in decimal GB/s, as openssl speed and most peers do
SEED = 20260415
WRITE_CHUNK_BYTES = 16 * MIB
HASHLIB_CHUNK_BYTES = 4 * MIB
N_SMALL_FILES = 4
WORKERS = 2

TARGET_VS_OPENSSL = 0.95
TARGET_VS_HASHLIB = 1.0
TARGET_MANIFEST_VERIFY = 1.8
TARGET_FOUR_FILES = 1.8
TARGET_SEAL = 5.0


def progress(message: str) -> None:
    # Progress goes to stderr; flushing stdout first keeps the two in order on a terminal.
    sys.stdout.flush()
    print(message, file=sys.stderr, flush=True)


def hex_of(digest: object) -> str:
    # Digests print as "algo:hex"; peers print bare hex.
    return str(digest).partition(":")[2]


# -- files -----------------------------------------------------------------------------------


def write_random_file(path: Path, size_bytes: int, seed: int) -> None:
    # Random bytes: nothing compresses or deduplicates, and a fixed seed makes reruns identical.
    rng = np.random.default_rng(seed)
    with open(path, "wb") as stream:
        remaining = size_bytes
        while remaining:
            chunk = min(remaining, WRITE_CHUNK_BYTES)
            stream.write(rng.bytes(chunk))
            remaining -= chunk


def ensure_file(path: Path, size_bytes: int, seed: int) -> None:
    # A file kept from an earlier run (--keep) with the right size has the same content.
    if path.is_file() and path.stat().st_size == size_bytes:
        return
    progress(f"writing {path} ({size_bytes / MIB:,.0f} MiB, seed {seed}) ...")
    write_random_file(path, size_bytes, seed)


def warm_page_cache(path: Path) -> None:
    # Every hasher then reads from memory: the benchmark measures hashing, not the disk.
    with open(path, "rb") as stream:
        while stream.read(WRITE_CHUNK_BYTES):
            pass


# -- peers -------------------------------------------------------------------------------------


def run_tool(command: Sequence[str]) -> str:
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    return completed.stdout


def openssl_sha256(path: Path) -> str:
    # OpenSSL 3 prints "SHA2-256(path)= hex", older ones "SHA256(path)= hex".
    return run_tool(["openssl", "dgst", "-sha256", str(path)]).rsplit("= ", 1)[1].strip()


def sha256sum(path: Path) -> str:
    return run_tool(["sha256sum", str(path)]).split()[0]


def hashlib_readinto(path: Path) -> str:
    """hashlib at its fairest: one reused buffer, no per-chunk allocation, GIL released."""
    hasher = hashlib.sha256()
    buffer = bytearray(HASHLIB_CHUNK_BYTES)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as stream:
        while n_read := stream.readinto(buffer):
            hasher.update(view[:n_read])
    return hasher.hexdigest()


def hashlib_file_digest(path: Path) -> str:
    with open(path, "rb") as stream:
        return hashlib.file_digest(stream, "sha256").hexdigest()


def raw_xxh3_128(path: Path) -> str:
    import xxhash

    # One call over the mapped file: the library's own best case, with no read loop around it.
    with open(path, "rb") as stream, mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as data:
        return xxhash.xxh3_128(data).hexdigest()


def raw_blake3(path: Path) -> str:
    import blake3

    # update_mmap with AUTO threads is how the blake3 package hashes a file fastest.
    hasher = blake3.blake3(max_threads=blake3.blake3.AUTO)
    hasher.update_mmap(str(path))
    return hasher.hexdigest()


def have_module(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


# -- cases -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One timed operation over `size_bytes` bytes; `run` returns something to cross-check."""

    key: str
    label: str
    size_bytes: int
    run: Callable[[], object]


@dataclass
class Sample:
    wall_s: float
    cpu_s: float  # this process and its children
    busy_s: float | None  # every CPU on the machine, from /proc/stat

    @property
    def other_cores(self) -> float | None:
        """Cores kept busy by other processes during the sample: contention to report."""
        if self.busy_s is None:
            return None
        return max(0.0, self.busy_s - self.cpu_s) / self.wall_s


@dataclass
class Files:
    big: Path
    small: list[Path]
    sha256: dict[Path, str] = field(default_factory=dict)  # "sha256:hex", from our file_digest


def build_cases(files: Files) -> list[Case]:
    from iris_models import verify

    big = files.big
    size = big.stat().st_size
    small_total = sum(path.stat().st_size for path in files.small)
    # Built before timing: the check row times verification against a manifest one already has.
    big_manifest = verify.manifest(big, workers=WORKERS)
    items = [(path, files.sha256[path]) for path in files.small]

    def four_together() -> object:
        return all(result.ok for result in verify.verify_many(items, workers=WORKERS))

    def four_one_at_a_time() -> object:
        return [str(verify.file_digest(path)) for path in files.small]

    def four_verify_workers_1() -> object:
        return all(verify.verify(path, expected, workers=1).ok for path, expected in items)

    cases = [
        Case("ours", "ours file_digest sha256", size, lambda: hex_of(verify.file_digest(big))),
        Case("openssl", "openssl dgst -sha256 (process)", size, lambda: openssl_sha256(big)),
        Case("sha256sum", "coreutils sha256sum (process)", size, lambda: sha256sum(big)),
        Case("hashlib", "hashlib.sha256 readinto 4 MiB", size, lambda: hashlib_readinto(big)),
    ]
    if hasattr(hashlib, "file_digest"):
        cases.append(
            Case("hashlib_fd", "hashlib.file_digest sha256", size, lambda: hashlib_file_digest(big))
        )
    if hasattr(verify, "sha256_bytes"):
        # Hashing bytes already in memory, no reads: the ceiling file hashing can approach.
        in_memory = files.small[0].read_bytes()
        passes = size // len(in_memory)

        def ours_in_memory() -> object:
            return [verify.sha256_bytes(in_memory) for _ in range(passes)][-1]

        def hashlib_in_memory() -> object:
            return [hashlib.sha256(in_memory).hexdigest() for _ in range(passes)][-1]

        cases += [
            Case("memory_ours", "ours sha256_bytes, in memory", size, ours_in_memory),
            Case("memory_hashlib", "hashlib.sha256, in memory", size, hashlib_in_memory),
        ]
    cases += [
        Case(
            "manifest_verify",
            f"ours verify(manifest, workers={WORKERS})",
            size,
            lambda: verify.verify(big, manifest=big_manifest, workers=WORKERS).ok,
        ),
        Case(
            "manifest_verify_1",
            "ours verify(manifest, workers=1)",
            size,
            lambda: verify.verify(big, manifest=big_manifest, workers=1).ok,
        ),
        Case(
            "manifest_build",
            f"ours manifest(workers={WORKERS})",
            size,
            lambda: hex_of(verify.manifest(big, workers=WORKERS).sha256),
        ),
        Case(
            "seal_xxh128",
            "ours file_digest xxh128",
            size,
            lambda: hex_of(verify.file_digest(big, "xxh128")),
        ),
        Case(
            "seal_blake3",
            "ours file_digest blake3",
            size,
            lambda: hex_of(verify.file_digest(big, "blake3")),
        ),
    ]
    if have_module("xxhash"):
        cases.append(Case("raw_xxh3", "xxhash.xxh3_128 over mmap", size, lambda: raw_xxh3_128(big)))
    if have_module("blake3"):
        cases.append(
            Case("raw_blake3", "blake3 update_mmap AUTO threads", size, lambda: raw_blake3(big))
        )
    cases += [
        Case(
            "four_together",
            f"ours verify_many {N_SMALL_FILES} files, workers={WORKERS}",
            small_total,
            four_together,
        ),
        Case(
            "four_sequential",
            f"ours file_digest x{N_SMALL_FILES}, one at a time",
            small_total,
            four_one_at_a_time,
        ),
        Case(
            "four_verify_1",
            f"ours verify(workers=1) x{N_SMALL_FILES}, one at a time",
            small_total,
            four_verify_workers_1,
        ),
    ]
    return cases


def cpu_seconds() -> float:
    # This process's threads plus every child that was waited for (openssl, sha256sum).
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


_CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def machine_busy_seconds() -> float | None:
    """CPU seconds spent on every core, by anyone, since boot (Linux only)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: all but idle and iowait is work.
    # guest time is already inside user, so only the first eight columns are summed.
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / _CLOCK_TICKS_PER_S


def time_once(case: Case) -> tuple[Sample, object]:
    gc.collect()
    busy_before, cpu_before = machine_busy_seconds(), cpu_seconds()
    start = time.perf_counter()
    value = case.run()
    wall_s = time.perf_counter() - start
    cpu_s, busy_after = cpu_seconds() - cpu_before, machine_busy_seconds()
    busy_s = None if busy_before is None or busy_after is None else busy_after - busy_before
    return Sample(wall_s, cpu_s, busy_s), value


def time_cases(cases: Sequence[Case], repeats: int) -> tuple[dict[str, list[Sample]], dict]:
    """Round-robin over the cases, so a burst of load from elsewhere hits all of them alike."""
    progress("warm-up round (also the cross-check) ...")
    checks = {case.key: time_once(case)[1] for case in cases}
    samples: dict[str, list[Sample]] = {case.key: [] for case in cases}
    for repeat in range(repeats):
        progress(f"round {repeat + 1}/{repeats} ...")
        # Rotate the order each round so no case always follows the slow sha256sum.
        shift = repeat % len(cases)
        for case in [*cases[shift:], *cases[:shift]]:
            samples[case.key].append(time_once(case)[0])
    return samples, checks


def startup_seconds(command: Sequence[str], runs: int = 5) -> float:
    """Median time of the tool on an empty input: what process start costs each timed run."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# -- memory in a fresh process ----------------------------------------------------------------


def child_main(spec_json: str) -> int:
    """Runs one operation in this fresh process and prints its memory growth as JSON."""
    from iris_models import verify

    spec = json.loads(spec_json)
    op, paths = spec["op"], [Path(path) for path in spec["paths"]]
    operations: dict[str, Callable[[], object]] = {
        "file_digest": lambda: verify.file_digest(paths[0]),
        "manifest": lambda: verify.manifest(paths[0], workers=WORKERS),
        "verify_many": lambda: verify.verify_many(
            list(zip(paths, spec["expected"], strict=True)), workers=WORKERS
        ),
    }
    if op == "verify_manifest":
        # The manifest is an input here: built before the peak is reset, so not counted.
        ready = verify.manifest(paths[0], workers=WORKERS)
        operations[op] = lambda: verify.verify(paths[0], manifest=ready, workers=WORKERS)
    gc.collect()
    peak_reset = reset_peak_rss()
    before = memory_status_kib()
    result = operations[op]()
    after = memory_status_kib()
    del result
    growth = {f"{key}_growth_kib": after[key] - before[key] for key in STATUS_KEYS}
    print(json.dumps({"peak_reset": peak_reset, **growth}))
    return 0


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(completed.stdout.strip().splitlines()[-1])


@dataclass(frozen=True)
class MemoryCase:
    label: str
    op: str
    small: list[Path]  # the paths at the smaller file size
    large: list[Path]  # the same operation at the larger file size


def memory_cases(files: Files) -> list[MemoryCase]:
    quarter = files.small[0]
    one = [
        MemoryCase("file_digest sha256", "file_digest", [quarter], [files.big]),
        MemoryCase(f"manifest(workers={WORKERS})", "manifest", [quarter], [files.big]),
        MemoryCase(
            f"verify(manifest, workers={WORKERS})", "verify_manifest", [quarter], [files.big]
        ),
    ]
    # The same number of files each time, only each file's size differs; the large case
    # names the big file four times (hashed four times, as four separate files would be).
    many = MemoryCase(
        f"verify_many {N_SMALL_FILES} files, workers={WORKERS}",
        "verify_many",
        list(files.small),
        [files.big] * N_SMALL_FILES,
    )
    return [*one, many]


def measure_memory(files: Files, runs: int) -> list[dict[str, Any]]:
    results = []
    for case in memory_cases(files):
        row: dict[str, Any] = {"label": case.label, "op": case.op}
        for size_name, paths in (("small", case.small), ("large", case.large)):
            progress(f"memory: {case.label} on {paths[0].stat().st_size / MIB:,.0f} MiB files ...")
            spec = {
                "op": case.op,
                "paths": [str(path) for path in paths],
                "expected": [files.sha256[path] for path in paths],
            }
            row[size_name] = {
                "file_bytes": paths[0].stat().st_size,
                "runs": [run_child(spec) for _ in range(runs)],
            }
        results.append(row)
    return results


# -- reporting -------------------------------------------------------------------------------


def median_gbps(size_bytes: int, samples: Sequence[Sample]) -> float:
    return size_bytes / statistics.median(sample.wall_s for sample in samples) / GB


def throughput_table(cases: Sequence[Case], samples: dict[str, list[Sample]]) -> str:
    rows = []
    for case in cases:
        runs = samples[case.key]
        wall = [sample.wall_s for sample in runs]
        # CPU seconds per wall second: how many cores the case kept busy.
        cores = statistics.median(sample.cpu_s / sample.wall_s for sample in runs)
        others = [sample.other_cores for sample in runs if sample.other_cores is not None]
        rows.append(
            [
                case.label,
                f"{case.size_bytes / MIB:,.0f}",
                f"{median_gbps(case.size_bytes, runs):.3f}",
                f"{statistics.median(wall):.3f}",
                f"{min(wall):.3f}",
                f"{cores:.2f}",
                " ".join(f"{other:.1f}" for other in others) or "n/a",
            ]
        )
    headers = [
        "measurement",
        "MiB",
        "median GB/s",
        "median s",
        "min s",
        "CPU/wall",
        "others' cores per run",
    ]
    return format_table(headers, rows)


@dataclass(frozen=True)
class Ratio:
    """Median throughput of the best of `ours` over the median throughput of `peer`."""

    label: str
    ours: tuple[str, ...]
    peer: str
    target: float | None


RATIOS = (
    Ratio("ours sha256 / openssl dgst -sha256", ("ours",), "openssl", TARGET_VS_OPENSSL),
    Ratio("ours sha256 / hashlib.sha256 readinto", ("ours",), "hashlib", TARGET_VS_HASHLIB),
    Ratio("ours sha256 / hashlib.file_digest", ("ours",), "hashlib_fd", None),
    Ratio("ours sha256 / coreutils sha256sum", ("ours",), "sha256sum", None),
    Ratio("ours sha256 file / ours in memory (read cost)", ("ours",), "memory_ours", None),
    Ratio("ours in memory / hashlib in memory", ("memory_ours",), "memory_hashlib", None),
    Ratio(
        f"verify(manifest, workers={WORKERS}) / ours single-stream",
        ("manifest_verify",),
        "ours",
        TARGET_MANIFEST_VERIFY,
    ),
    Ratio("verify(manifest, workers=1) / ours single-stream", ("manifest_verify_1",), "ours", None),
    Ratio(
        f"manifest build (workers={WORKERS}) / ours single-stream",
        ("manifest_build",),
        "ours",
        None,
    ),
    Ratio(
        f"{N_SMALL_FILES} files together / one at a time",
        ("four_together",),
        "four_sequential",
        TARGET_FOUR_FILES,
    ),
    Ratio(
        f"{N_SMALL_FILES} x verify(workers=1) / file_digest one at a time",
        ("four_verify_1",),
        "four_sequential",
        None,
    ),
    Ratio("best seal / ours sha256", ("seal_xxh128", "seal_blake3"), "ours", TARGET_SEAL),
    Ratio("ours xxh128 / ours sha256", ("seal_xxh128",), "ours", None),
    Ratio("ours blake3 / ours sha256", ("seal_blake3",), "ours", None),
    Ratio("ours xxh128 / xxhash.xxh3_128 mmap", ("seal_xxh128",), "raw_xxh3", None),
    Ratio("ours blake3 / blake3 update_mmap", ("seal_blake3",), "raw_blake3", None),
)


def compute_ratios(cases: Sequence[Case], samples: dict[str, list[Sample]]) -> list[dict[str, Any]]:
    sizes = {case.key: case.size_bytes for case in cases}
    results = []
    for ratio in RATIOS:
        present = [key for key in ratio.ours if key in samples]
        if not present or ratio.peer not in samples:
            continue
        best = max(present, key=lambda key: median_gbps(sizes[key], samples[key]))
        ours_gbps = median_gbps(sizes[best], samples[best])
        value = ours_gbps / median_gbps(sizes[ratio.peer], samples[ratio.peer])
        # The same ratio from each side's fastest run: the runs least disturbed by other load.
        best_runs = (sizes[best] / min(sample.wall_s for sample in samples[best])) / (
            sizes[ratio.peer] / min(sample.wall_s for sample in samples[ratio.peer])
        )
        results.append(
            {
                "label": ratio.label if len(ratio.ours) == 1 else f"{ratio.label} ({best})",
                "ours_key": best,
                "peer_key": ratio.peer,
                "ours_median_gbps": ours_gbps,
                "ours_min_s": min(sample.wall_s for sample in samples[best]),
                "ratio": value,
                "ratio_of_fastest_runs": best_runs,
                "target": ratio.target,
                "met": None if ratio.target is None else value >= ratio.target,
            }
        )
    return results


def ratio_table(ratios: Sequence[dict[str, Any]]) -> str:
    rows = [
        [
            ratio["label"],
            f"{ratio['ours_median_gbps']:.3f}",
            f"{ratio['ours_min_s']:.3f}",
            f"{ratio['ratio']:.2f}x",
            f"{ratio['ratio_of_fastest_runs']:.2f}x",
            "-" if ratio["target"] is None else f">= {ratio['target']:.2f}x",
            {None: "-", True: "yes", False: "NO"}[ratio["met"]],
        ]
        for ratio in ratios
    ]
    headers = ["measurement", "median GB/s", "min time s", "ratio", "ratio (min)", "target", "met?"]
    return format_table(headers, rows)


def memory_table(results: Sequence[dict[str, Any]]) -> str:
    rows = []
    for result in results:

        def worst(size_name: str, key: str, result: dict[str, Any] = result) -> int:
            return max(run[key] for run in result[size_name]["runs"])

        small_peak = worst("small", "VmHWM_growth_kib")
        large_peak = worst("large", "VmHWM_growth_kib")
        small_mib, large_mib = (result[name]["file_bytes"] / MIB for name in ("small", "large"))
        rows.append(
            [
                result["label"],
                f"{small_mib:,.0f} -> {large_mib:,.0f}",
                f"{small_peak:,}",
                f"{large_peak:,}",
                f"{large_peak - small_peak:+,}",
                f"{worst('large', 'RssAnon_growth_kib'):,}",
                f"{worst('large', 'RssFile_growth_kib'):,}",
            ]
        )
    headers = [
        "operation",
        "file MiB",
        "VmHWM +KiB small",
        "VmHWM +KiB large",
        "difference KiB",
        "RssAnon +KiB large",
        "RssFile +KiB large",
    ]
    return format_table(headers, rows)


THROUGHPUT_LEGEND = """\
  CPU/wall              median CPU seconds (this process and its children) per wall second:
                        the cores the measurement kept busy.
  others' cores per run cores busy with other processes during each timed run (/proc/stat);
                        above ~0.3 on two cores, a parallel measurement lost its second core."""

RATIO_LEGEND = """\
  ratio        median throughput of the measurement / median throughput of its peer; the
               targets are judged on this.
  ratio (min)  the same from each side's fastest run, the least disturbed by other load."""

MEMORY_LEGEND = """\
Memory: each run is one call in a fresh Python process (iris_models.verify already imported);
the largest value over the runs is shown. Flat in file size means the difference column stays
near zero while the file grows four times.
  VmHWM     growth of peak RSS over the call (reset through /proc/self/clear_refs just before),
            anonymous memory plus any mapped file pages; so first-call buffers and thread
            stacks count.
  RssAnon   anonymous memory still held after the call.
  RssFile   file pages mapped into the process (0 when the files are read, not mapped)."""


# -- environment -------------------------------------------------------------------------------


def cpu_info() -> dict[str, Any]:
    model: str | None = None
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = (part.strip() for part in line.partition(":"))
                # Every core repeats these lines; the first core's are enough.
                if key == "model name" and model is None:
                    model = value
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": model or platform.processor() or "unknown",
        "logical_cpus": os.cpu_count(),
        "cpus_available": available,
        # sha_ni (x86) and sha2 (arm) decide whether SHA-256 runs in hardware at all.
        "flags": sorted(flags & {"sha_ni", "sha2", "avx2", "avx512f", "avx512vl"}),
        "system": f"{platform.system()} {platform.release()}",
    }


def package_version(name: str) -> str | None:
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, Any]:
    from iris_models import verify

    return {
        "iris-models": package_version("iris-models"),
        "sha256_backends": list(verify.sha256_backends()),
        "python": platform.python_version(),
        "hashlib OpenSSL": ssl.OPENSSL_VERSION,
        "openssl CLI": run_tool(["openssl", "version"]).strip(),
        "sha256sum": run_tool(["sha256sum", "--version"]).splitlines()[0],
        "xxhash": package_version("xxhash"),
        "blake3": package_version("blake3"),
        "numpy": package_version("numpy"),
    }


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def memory_available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# -- driver ----------------------------------------------------------------------------------


def prepare_files(directory: Path, size_bytes: int) -> Files:
    files = Files(
        big=directory / "bench-verify-big.bin",
        small=[directory / f"bench-verify-part{index}.bin" for index in range(N_SMALL_FILES)],
    )
    ensure_file(files.big, size_bytes, SEED)
    for index, path in enumerate(files.small):
        ensure_file(path, size_bytes // N_SMALL_FILES, SEED + 1 + index)
    for path in [files.big, *files.small]:
        warm_page_cache(path)
    return files


def cross_check(files: Files, checks: dict[str, object]) -> list[str]:
    """Every hasher must agree on the bytes, or its time means nothing."""
    problems = []
    sha_rows = ("ours", "openssl", "sha256sum", "hashlib", "hashlib_fd", "manifest_build")
    expected = hex_of(files.sha256[files.big])
    problems += [
        f"{key} gave {checks[key]}" for key in sha_rows if checks.get(key, expected) != expected
    ]
    for key in ("manifest_verify", "manifest_verify_1", "four_together", "four_verify_1"):
        if checks.get(key) is not True:
            problems.append(f"{key} did not verify (got {checks.get(key)!r})")
    if "memory_ours" in checks and checks["memory_ours"] != checks["memory_hashlib"]:
        problems.append("sha256_bytes and hashlib disagree in memory")
    if checks.get("four_sequential") != [files.sha256[path] for path in files.small]:
        problems.append("four_sequential digests differ from the first pass")
    for ours, raw in (("seal_xxh128", "raw_xxh3"), ("seal_blake3", "raw_blake3")):
        if raw in checks and checks[ours] != checks[raw]:
            problems.append(f"{ours} {checks[ours]} != {raw} {checks[raw]}")
    return problems


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--size-mib", type=int, default=1024, help="the big file; the four parts are a quarter each"
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds (%(default)s)")
    parser.add_argument(
        "--memory-runs", type=int, default=2, help="fresh-process runs per operation and size"
    )
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument(
        "--dir", type=Path, help="where to write the files (default: a new temporary directory)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the files (reused next run)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.size_mib < N_SMALL_FILES or args.size_mib % N_SMALL_FILES:
        parser.error(f"--size-mib must be a positive multiple of {N_SMALL_FILES}")
    if args.repeats < 1 or args.memory_runs < 1:
        parser.error("--repeats and --memory-runs must be at least 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child)

    from iris_models import verify

    machine, found_versions = cpu_info(), versions()
    print(
        f"machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs "
        f"({machine['cpus_available']} available), flags {', '.join(machine['flags']) or 'none'}, "
        f"{machine['system']}"
    )
    print("versions: " + "; ".join(f"{name} {value}" for name, value in found_versions.items()))
    load_before = load_average()
    print(f"load average (1, 5, 15 min) at start: {load_before}")

    size_bytes = args.size_mib * MIB
    available = memory_available_bytes()
    if available is not None and available < 3 * size_bytes:
        print(
            f"note: only {available / MIB:,.0f} MiB available; the {2 * size_bytes / MIB:,.0f} MiB "
            "of files may not all stay in the page cache"
        )
    temporary = args.dir is None
    directory = Path(tempfile.mkdtemp(prefix="iris-bench-verify-")) if temporary else args.dir
    directory.mkdir(parents=True, exist_ok=True)
    files = prepare_files(directory, size_bytes)
    try:
        for path in [files.big, *files.small]:
            files.sha256[path] = str(verify.file_digest(path))
        cases = build_cases(files)
        samples, checks = time_cases(cases, args.repeats)
        startup = {
            "openssl": startup_seconds(["openssl", "dgst", "-sha256", "/dev/null"]),
            "sha256sum": startup_seconds(["sha256sum", "/dev/null"]),
        }
        memory = measure_memory(files, args.memory_runs)
    finally:
        if not args.keep:
            for path in [files.big, *files.small]:
                path.unlink(missing_ok=True)
            if temporary:
                shutil.rmtree(directory, ignore_errors=True)
    load_after = load_average()

    ratios = compute_ratios(cases, samples)
    print()
    print(
        f"== throughput over page-cached files ({args.size_mib:,} MiB; {N_SMALL_FILES} parts of "
        f"{args.size_mib // N_SMALL_FILES:,} MiB); {args.repeats} round-robin rounds after a "
        "warm-up; GB/s = bytes / median s (1 GB = 1e9 bytes)"
    )
    print(throughput_table(cases, samples))
    print(THROUGHPUT_LEGEND)
    for tool, seconds in startup.items():
        share = seconds / statistics.median(sample.wall_s for sample in samples[tool])
        print(
            f"{tool} on /dev/null (process start-up): {seconds * 1e3:.1f} ms, "
            f"{100 * share:.1f}% of its median run"
        )
    print()
    print("== ratios (median throughput of the first row over its peer, same run)")
    print(ratio_table(ratios))
    print(RATIO_LEGEND)
    problems = cross_check(files, checks)
    print(
        "cross-check: every hasher agreed on the bytes"
        if not problems
        else "WARNING, cross-check failed: " + "; ".join(problems)
    )
    print()
    print("== peak memory growth per call, fresh process each")
    print(memory_table(memory))
    print(MEMORY_LEGEND)
    print()
    print(f"load average at start: {load_before}; at end: {load_after}")

    if args.json is not None:
        document = {
            "machine": machine,
            "versions": found_versions,
            "load_average": {"start": load_before, "end": load_after},
            "size_bytes": size_bytes,
            "samples": {key: [vars(sample) for sample in runs] for key, runs in samples.items()},
            "cases": {case.key: {"label": case.label, "bytes": case.size_bytes} for case in cases},
            "process_startup_s": startup,
            "ratios": ratios,
            "memory": memory,
            "cross_check_problems": problems,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"raw numbers written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
