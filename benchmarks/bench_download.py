"""Throughput and memory benchmark of iris_models.download against the downloaders people use.

Downloads a random file (1 GiB) from a private loopback nginx to disk, verified by SHA-256,
with ours (adaptive, 1, 4 and 8 connections) and with ``curl -o``, ``curl | openssl dgst``,
``curl | tee | openssl dgst``, ``aria2c -x8``, hf_transfer and an httpx stream with hashlib;
prints the throughput, the ratios against the issue's targets, each run's peak memory (every
run is a fresh process), and ours at 1 and 4 connections through a per-connection rate limit.

Run it from the repository root (not collected by pytest; about eight minutes for 1 GiB on
two cores)::

    apt-get install nginx-light curl aria2 time
    pip install -e '.[bench]'
    python benchmarks/bench_download.py --size-mib 1024 --rounds 3 --json download.json
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from _proc_status import memory_status_kib, reset_peak_rss
from _tables import format_table
from _timing import median_ms

REPO_ROOT = Path(__file__).resolve().parent.parent
MIB = 1 << 20
MB = 1e6  # throughput and memory are reported in decimal MB, as curl and the reference do
SEED = 20260512
HASH_CHUNK_BYTES = 1 * MIB  # hashlib's second passes and the httpx stream, as in the reference
HF_MAX_FILES = 8
HF_CHUNK_BYTES = 16 * MIB

TARGET_VS_CURL = 0.8
TARGET_VS_ARIA2C = 1.5
TARGET_MEMORY_BYTES = 64 * MB
TARGET_SCALING = 3.5
SCALING_CONNECTIONS = 4

INSTALL_HINTS = {
    "curl": "apt-get install curl",
    "openssl": "apt-get install openssl",
    "aria2c": "apt-get install aria2",
    "hf_transfer": "pip install hf_transfer  (or pip install -e '.[bench]')",
}


def progress(message: str) -> None:
    # Progress goes to stderr; flushing stdout first keeps the two in order on a terminal.
    sys.stdout.flush()
    print(message, file=sys.stderr, flush=True)


class BenchmarkError(RuntimeError):
    """A peer is missing, or the machine cannot hold the files."""


# -- one measurement in a fresh child process ------------------------------------------------


@dataclass
class Sample:
    """One timed run. Python rows time themselves after their imports; tool rows are timed as
    the whole process (or pipeline), start-up included."""

    wall_s: float
    cpu_s: float
    peak_rss_kib: int | None
    """The largest single process of the run, interpreter included: Python rows read their
    own VmHWM, tools are measured by GNU time (None without it)."""
    growth_kib: int | None = None
    """Python rows: peak RSS over the call above the RSS after the imports."""
    baseline_kib: int | None = None
    connections: int | None = None
    """Ours: the most connections open at once (sampled every 20 ms)."""
    threads: int | None = None
    """Ours: the most Python threads alive at once, the main and the sampler thread included."""
    other_cores: float | None = None
    """Cores kept busy during the run by processes other than the run and nginx."""


@dataclass(frozen=True)
class Finished:
    wall_s: float
    cpu_s: float
    maxrss_kib: int | None
    returncode: int
    stdout: str
    stderr: str
    other_cores: float | None


_CLOCK_TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class Contention:
    """CPU seconds that every core spent, and nginx's share, from /proc (Linux): what is
    left after the run's own CPU is load from elsewhere, which slows a run on a shared
    machine."""

    nginx_pid: int | None = None

    @staticmethod
    def machine_busy_s() -> float | None:
        try:
            with open("/proc/stat") as stat:
                fields = [int(value) for value in stat.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        # user nice system idle iowait irq softirq steal: all but idle and iowait is work.
        return (sum(fields[:8]) - fields[3] - fields[4]) / _CLOCK_TICKS_PER_S

    @classmethod
    def nginx_cpu_s(cls) -> float:
        if cls.nginx_pid is None:
            return 0.0
        try:
            stat = Path(f"/proc/{cls.nginx_pid}/stat").read_text()
        except OSError:
            return 0.0
        fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
        return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS_PER_S

    @classmethod
    def snapshot(cls) -> tuple[float | None, float]:
        return cls.machine_busy_s(), cls.nginx_cpu_s()

    @classmethod
    def other_cores(
        cls, before: tuple[float | None, float], run_cpu_s: float, wall_s: float
    ) -> float | None:
        busy_after, nginx_after = cls.snapshot()
        if before[0] is None or busy_after is None or wall_s <= 0:
            return None
        others = (busy_after - before[0]) - (nginx_after - before[1]) - run_cpu_s
        return max(0.0, others) / wall_s


GNU_TIME = Path("/usr/bin/time")


def run_process(command: Sequence[str], *, measure_rss: bool = False) -> Finished:
    """Runs `command` to its end; CPU time from wait4, and with `measure_rss` its peak RSS
    through GNU time: the largest single process of the command (a pipeline's largest).

    wait4's own ru_maxrss cannot be used for that: a child forked from this interpreter
    carries this process's RSS into its figure until it execs, so every tool would read as
    big as the benchmark itself. GNU time's child is forked from a 2 MB process."""
    with tempfile.TemporaryDirectory(prefix="iris-bench-run-") as scratch:
        stats = Path(scratch) / "time"
        if measure_rss and os.access(GNU_TIME, os.X_OK):
            command = [str(GNU_TIME), "-f", "%M", "-o", str(stats), *command]
        with open(Path(scratch) / "out", "w+b") as out, open(Path(scratch) / "err", "w+b") as err:
            before = Contention.snapshot()
            start = time.perf_counter()
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            _, status, usage = os.wait4(process.pid, 0)
            wall_s = time.perf_counter() - start
            cpu_s = usage.ru_utime + usage.ru_stime
            other_cores = Contention.other_cores(before, cpu_s, wall_s)
            process.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait again
            out.seek(0)
            err.seek(0)
            stdout, stderr = (
                out.read().decode(errors="replace"),
                err.read().decode(errors="replace"),
            )
        maxrss = None
        if stats.exists():
            # GNU time appends its figure after any "Command exited with non-zero status" line.
            last = stats.read_text().strip().splitlines()[-1:]
            maxrss = int(last[0]) if last and last[0].isdigit() else None
        return Finished(
            wall_s=wall_s,
            cpu_s=cpu_s,
            maxrss_kib=maxrss,
            returncode=process.returncode,
            stdout=stdout,
            stderr=stderr,
            other_cores=other_cores,
        )


def cpu_seconds_self() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


def sha256_of_file(path: Path) -> str:
    """hashlib at its fairest: one reused buffer, 1 MiB reads."""
    hasher = hashlib.sha256()
    buffer = bytearray(HASH_CHUNK_BYTES)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as stream:
        while count := stream.readinto(buffer):
            hasher.update(view[:count])
    return hasher.hexdigest()


class Meter:
    """Time, CPU and memory of one call in this fresh process, started after the imports."""

    def __init__(self) -> None:
        before = memory_status_kib()
        self.baseline_kib = before["VmRSS"]
        self.imports_peak_kib = before["VmHWM"]  # this process's peak so far (imports)
        self.peak_reset = reset_peak_rss()
        self.cpu_before, self.start = cpu_seconds_self(), time.perf_counter()

    def lap(self) -> tuple[float, float]:
        return time.perf_counter() - self.start, cpu_seconds_self() - self.cpu_before

    def result(self) -> dict[str, Any]:
        wall_s, cpu_s = self.lap()
        peak = memory_status_kib()["VmHWM"]
        return {
            "wall_s": wall_s,
            "cpu_s": cpu_s,
            "baseline_kib": self.baseline_kib,
            "growth_kib": peak - self.baseline_kib if self.peak_reset else None,
            "peak_rss_kib": max(peak, self.imports_peak_kib),
        }


def child_ours(spec: dict[str, Any]) -> dict[str, Any]:
    # Imported before the baseline: the growth is what the download holds, not module code.
    import httpx  # noqa: F401

    import iris_models._http  # noqa: F401 - run() imports it; its client is created in the call
    from iris_models.download import FileDownload, FileSource, TransferOptions

    source = FileSource([spec["url"]], size=spec["size"], sha256=f"sha256:{spec['sha256']}")
    options = TransferOptions(connections=spec["connections"])
    download = FileDownload(source, Path(spec["out"]), options=options)
    most = {"connections": 0, "threads": 0}
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.02):
            most["connections"] = max(most["connections"], download.progress().connections)
            most["threads"] = max(most["threads"], threading.active_count())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()  # before the baseline, so its own stack is not counted as growth
    meter = Meter()
    result = download.run()
    found = meter.result()
    stop.set()
    sampler.join()
    return {**found, "sha256": result.sha256.partition(":")[2], **most}


def child_hf_transfer(spec: dict[str, Any]) -> dict[str, Any]:
    import hf_transfer

    meter = Meter()
    hf_transfer.download(
        url=spec["url"], filename=spec["out"], max_files=HF_MAX_FILES, chunk_size=HF_CHUNK_BYTES
    )
    download_s, download_cpu_s = meter.lap()
    # hf_transfer does not hash: huggingface_hub hashes the file in a second pass afterwards.
    digest = sha256_of_file(Path(spec["out"]))
    return {
        **meter.result(),
        "download_s": download_s,
        "download_cpu_s": download_cpu_s,
        "sha256": digest,
    }


def child_httpx(spec: dict[str, Any]) -> dict[str, Any]:
    import httpx

    meter = Meter()
    hasher = hashlib.sha256()
    with (
        httpx.Client(timeout=60.0) as client,
        client.stream("GET", spec["url"]) as response,
        open(spec["out"], "wb") as out,
    ):
        response.raise_for_status()
        for chunk in response.iter_bytes(HASH_CHUNK_BYTES):
            out.write(chunk)
            hasher.update(chunk)
    return {**meter.result(), "sha256": hasher.hexdigest()}


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "ours": child_ours,
    "hf_transfer": child_hf_transfer,
    "httpx": child_httpx,
}


def child_main(spec_json: str) -> int:
    spec = json.loads(spec_json)
    print(json.dumps(CHILDREN[spec["kind"]](spec)))
    return 0


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs one Python row in a fresh interpreter; it measures itself (see Meter)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)]
    finished = run_process(command)
    if finished.returncode != 0:
        raise RuntimeError(f"exit status {finished.returncode}: {finished.stderr.strip()[-600:]}")
    found = dict(json.loads(finished.stdout.strip().splitlines()[-1]))
    return {**found, "other_cores": finished.other_cores}


# -- the rows ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A file nginx serves, with what it must turn out to be."""

    url: str
    size: int
    sha256: str  # hex


@dataclass(frozen=True)
class Row:
    key: str
    label: str
    verified: str
    """How the row knows its bytes are right: what the throughput includes."""


@dataclass(frozen=True)
class Case:
    """One run in a fresh process; gives one sample per row (hf_transfer gives two)."""

    name: str
    rows: tuple[Row, ...]
    run: Callable[[Path], dict[str, Sample]]


class CheckFailed(RuntimeError):
    """A run finished, but its bytes were not the file (or it failed)."""


def check_digest(label: str, got: str, target: Target) -> None:
    if got != target.sha256:
        raise CheckFailed(f"{label}: sha256 {got}, expected {target.sha256}")


def check_file(label: str, path: Path, target: Target, *, hash_it: bool) -> None:
    size = path.stat().st_size if path.exists() else None
    if size != target.size:
        raise CheckFailed(f"{label}: {path.name} has {size} bytes, expected {target.size}")
    if hash_it:
        check_digest(label, sha256_of_file(path), target)


def ours_case(key: str, label: str, target: Target, connections: int | None) -> Case:
    row = Row(key, label, "in-stream sha256, fdatasync at the end")

    def run(out: Path) -> dict[str, Sample]:
        spec = {
            "kind": "ours",
            "url": target.url,
            "size": target.size,
            "sha256": target.sha256,
            "out": str(out),
            "connections": connections,
        }
        found = run_child(spec)
        check_digest(label, found["sha256"], target)
        check_file(label, out, target, hash_it=False)  # the digest above was read from disk
        return {
            key: Sample(
                wall_s=found["wall_s"],
                cpu_s=found["cpu_s"],
                peak_rss_kib=found["peak_rss_kib"],
                growth_kib=found["growth_kib"],
                baseline_kib=found["baseline_kib"],
                connections=found["connections"],
                threads=found["threads"],
                other_cores=found["other_cores"],
            )
        }

    return Case(key, (row,), run)


def tool_case(
    key: str,
    label: str,
    verified: str,
    target: Target,
    command: Callable[[Path], list[str]],
    *,
    digest_from_stdout: bool,
    file_check: str | None,
) -> Case:
    """A command or a pipeline. `file_check`: "hash" (the file is hashed after the timing, for
    the check only), "size" (the stream's digest vouches; the saved file's size is checked)."""

    def run(out: Path) -> dict[str, Sample]:
        finished = run_process(command(out), measure_rss=True)
        if finished.returncode != 0:
            raise CheckFailed(
                f"{label}: exit status {finished.returncode}: {finished.stderr[-600:]}"
            )
        if digest_from_stdout:
            # openssl 3 prints "SHA2-256(stdin)= hex", older ones "(stdin)= hex".
            check_digest(label, finished.stdout.rsplit("= ", 1)[-1].strip(), target)
        if file_check is not None:
            check_file(label, out, target, hash_it=file_check == "hash")
        sample = Sample(
            finished.wall_s, finished.cpu_s, finished.maxrss_kib, other_cores=finished.other_cores
        )
        return {key: sample}

    return Case(key, (Row(key, label, verified),), run)


def hf_transfer_case(target: Target) -> Case:
    label = f"hf_transfer max_files={HF_MAX_FILES}, chunk 16 MiB"
    rows = (
        Row("hf_hash", f"{label} + hashlib second pass", "sha256 second pass (hashlib)"),
        Row("hf", f"{label} alone", "none (hashed after timing)"),
    )

    def run(out: Path) -> dict[str, Sample]:
        spec = {"kind": "hf_transfer", "url": target.url, "out": str(out)}
        found = run_child(spec)
        check_digest("hf_transfer", found["sha256"], target)
        check_file("hf_transfer", out, target, hash_it=False)
        peak, growth, baseline = found["peak_rss_kib"], found["growth_kib"], found["baseline_kib"]
        shared = {
            "growth_kib": growth,
            "baseline_kib": baseline,
            "other_cores": found["other_cores"],
        }
        # One run, two rows: the download alone, and the download with its second pass.
        return {
            "hf": Sample(found["download_s"], found["download_cpu_s"], peak, **shared),
            "hf_hash": Sample(found["wall_s"], found["cpu_s"], peak, **shared),
        }

    return Case("hf_transfer", rows, run)


def httpx_case(target: Target) -> Case:
    label = "httpx stream iter_bytes(1 MiB) + hashlib"
    row = Row("httpx", label, "in-stream sha256 (hashlib)")

    def run(out: Path) -> dict[str, Sample]:
        found = run_child({"kind": "httpx", "url": target.url, "out": str(out)})
        check_digest(label, found["sha256"], target)
        check_file(label, out, target, hash_it=False)
        fields = ("wall_s", "cpu_s", "peak_rss_kib", "growth_kib", "baseline_kib", "other_cores")
        return {"httpx": Sample(**{name: found[name] for name in fields})}

    return Case("httpx", (row,), run)


def shell(pipeline: str) -> list[str]:
    # pipefail: a curl that fails in front of openssl must fail the run, not hash nothing.
    return ["bash", "-o", "pipefail", "-c", pipeline]


def peer_cases(target: Target, available: set[str]) -> list[Case]:
    url = shlex.quote(target.url)
    cases = []
    if {"curl", "openssl"} <= available:
        cases += [
            tool_case(
                "curl_o",
                "curl -s -o FILE",
                "none (hashed after timing)",
                target,
                lambda out: ["curl", "-s", "-o", str(out), target.url],
                digest_from_stdout=False,
                file_check="hash",
            ),
            tool_case(
                "curl_o_sync",
                "curl -s -o FILE && sync -d FILE",
                "none; fsync'd, as ours is",
                target,
                lambda out: shell(
                    f"curl -s -o {shlex.quote(str(out))} {url} && sync -d {shlex.quote(str(out))}"
                ),
                digest_from_stdout=False,
                file_check="hash",
            ),
            tool_case(
                "curl_openssl",
                "curl -s | openssl dgst -sha256",
                "in-stream sha256, NO FILE (hash-only)",
                target,
                lambda _out: shell(f"curl -s {url} | openssl dgst -sha256"),
                digest_from_stdout=True,
                file_check=None,
            ),
            tool_case(
                "curl_tee",
                "curl -s | tee FILE | openssl dgst -sha256",
                "in-stream sha256 (openssl)",
                target,
                lambda out: shell(
                    f"curl -s {url} | tee {shlex.quote(str(out))} | openssl dgst -sha256"
                ),
                digest_from_stdout=True,
                file_check="size",
            ),
        ]
    if "aria2c" in available:
        cases.append(
            tool_case(
                "aria2c",
                "aria2c -x8 -s8 -k16M --file-allocation=falloc",
                "none (hashed after timing)",
                target,
                lambda out: [
                    "aria2c",
                    "-q",
                    "-x8",
                    "-s8",
                    "-k16M",
                    "--file-allocation=falloc",
                    "-d",
                    str(out.parent),
                    "-o",
                    out.name,
                    target.url,
                ],
                digest_from_stdout=False,
                file_check="hash",
            )
        )
    if "hf_transfer" in available:
        cases.append(hf_transfer_case(target))
    cases.append(httpx_case(target))  # httpx comes with iris-models
    return cases


def main_cases(target: Target, available: set[str]) -> list[Case]:
    return [
        ours_case("ours", "ours (adaptive connections)", target, None),
        ours_case("ours_1", "ours --connections 1", target, 1),
        ours_case("ours_4", "ours --connections 4", target, 4),
        ours_case("ours_8", "ours --connections 8", target, 8),
        *peer_cases(target, available),
    ]


# -- timing ------------------------------------------------------------------------------------


def fresh_output(out: Path) -> None:
    # No earlier file to overwrite, and no dirty pages of the last run written back mid-run.
    out.unlink(missing_ok=True)
    (out.parent / f"{out.name}.aria2").unlink(missing_ok=True)
    os.sync()


def time_cases(
    cases: Sequence[Case], rounds: int, warmup: int, out: Path, what: str
) -> tuple[dict[str, list[Sample]], list[str]]:
    """Round-robin over the cases, the order rotated every round, so a burst of load from
    elsewhere (or the filesystem's first-write slowness) hits all of them alike."""
    samples: dict[str, list[Sample]] = {row.key: [] for case in cases for row in case.rows}
    problems: list[str] = []
    for index in range(warmup + rounds):
        timed = index >= warmup
        name = f"round {index - warmup + 1}/{rounds}" if timed else f"warm-up {index + 1}"
        shift = index % len(cases)
        for case in [*cases[shift:], *cases[:shift]]:
            progress(f"{what}, {name}: {case.name} ...")
            fresh_output(out)
            try:
                found = case.run(out)
            except (CheckFailed, RuntimeError, OSError) as error:
                problems.append(f"{name}: {error}")
                progress(f"  FAILED: {error}")
                continue
            finally:
                out.unlink(missing_ok=True)
            if timed:
                for key, sample in found.items():
                    samples[key].append(sample)
    return samples, problems


def memory_only(cases: Sequence[Case], out: Path) -> tuple[dict[str, list[Sample]], list[str]]:
    return time_cases(cases, 1, 0, out, "memory on the small file")


# -- reporting -------------------------------------------------------------------------------


def median_mbps(size: int, runs: Sequence[Sample]) -> float:
    return size / statistics.median(sample.wall_s for sample in runs) / MB


def peak_rss_bytes(runs: Sequence[Sample]) -> int | None:
    peaks = [sample.peak_rss_kib for sample in runs if sample.peak_rss_kib is not None]
    return max(peaks) * 1024 if peaks else None


def peak_rss_text(runs: Sequence[Sample]) -> str:
    peak = peak_rss_bytes(runs)
    return "n/a" if peak is None else f"{peak / MB:,.0f}"


def throughput_table(rows: Sequence[Row], samples: dict[str, list[Sample]], size: int) -> str:
    lines = []
    for row in rows:
        runs = samples.get(row.key) or []
        if not runs:
            lines.append([row.label, row.verified, "failed", "", "", "", "", "", ""])
            continue
        wall = [sample.wall_s for sample in runs]
        lines.append(
            [
                row.label,
                row.verified,
                f"{median_mbps(size, runs):,.0f}",
                f"{size / max(wall) / MB:,.0f}",
                f"{statistics.median(wall):.2f}",
                f"{min(wall):.2f}",
                f"{statistics.median(sample.cpu_s for sample in runs):.2f}",
                peak_rss_text(runs),
                " ".join(
                    f"{sample.other_cores:.1f}" for sample in runs if sample.other_cores is not None
                )
                or "n/a",
            ]
        )
    headers = [
        "row",
        "verification",
        "median MB/s",
        "worst MB/s",
        "median s",
        "min s",
        "CPU s",
        "peak RSS MB",
        "others' cores per run",
    ]
    return format_table(headers, lines)


@dataclass(frozen=True)
class Ratio:
    label: str
    ours: str
    peer: str
    target: float | None


RATIOS = (
    Ratio("ours (adaptive) / curl -o", "ours", "curl_o", TARGET_VS_CURL),
    Ratio("ours (adaptive) / aria2c -x8", "ours", "aria2c", TARGET_VS_ARIA2C),
    Ratio("ours (adaptive) / curl | tee | openssl (save + hash)", "ours", "curl_tee", None),
    Ratio("ours (adaptive) / curl -o && sync (durable)", "ours", "curl_o_sync", None),
    Ratio("ours (adaptive) / curl | openssl (hash only, no file)", "ours", "curl_openssl", None),
    Ratio("ours (adaptive) / hf_transfer + hashlib", "ours", "hf_hash", None),
    Ratio("ours (adaptive) / hf_transfer alone", "ours", "hf", None),
    Ratio("ours (adaptive) / httpx + hashlib", "ours", "httpx", None),
    Ratio("ours --connections 1 / curl -o", "ours_1", "curl_o", None),
    Ratio("ours --connections 4 / curl -o", "ours_4", "curl_o", None),
    Ratio("ours --connections 8 / curl -o", "ours_8", "curl_o", None),
    Ratio("ours --connections 8 / aria2c -x8", "ours_8", "aria2c", None),
)


def met_text(met: bool | None) -> str:
    return {None: "-", True: "met", False: "NOT met"}[met]


def compute_ratios(
    ratios: Sequence[Ratio], samples: dict[str, list[Sample]], size: int
) -> list[dict[str, Any]]:
    results = []
    for ratio in ratios:
        ours, peer = samples.get(ratio.ours), samples.get(ratio.peer)
        if not ours or not peer:
            continue
        value = median_mbps(size, ours) / median_mbps(size, peer)
        # The same from each side's fastest run: the runs least disturbed by other load.
        fastest = min(sample.wall_s for sample in peer) / min(sample.wall_s for sample in ours)
        results.append(
            {
                "label": ratio.label,
                "ours_key": ratio.ours,
                "peer_key": ratio.peer,
                "ours_median_mbps": median_mbps(size, ours),
                "peer_median_mbps": median_mbps(size, peer),
                "ratio": value,
                "ratio_of_fastest_runs": fastest,
                "target": ratio.target,
                "met": None if ratio.target is None else value >= ratio.target,
            }
        )
    return results


def ratio_table(results: Sequence[dict[str, Any]]) -> str:
    rows = [
        [
            result["label"],
            f"{result['ours_median_mbps']:,.0f}",
            f"{result['peer_median_mbps']:,.0f}",
            f"{result['ratio']:.2f}x",
            f"{result['ratio_of_fastest_runs']:.2f}x",
            "-" if result["target"] is None else f">= {result['target']:.1f}x",
            met_text(result["met"]),
        ]
        for result in results
    ]
    headers = ["ratio", "ours MB/s", "peer MB/s", "ratio", "ratio (min)", "target", "target"]
    return format_table(headers, rows)


def memory_rows(
    rows: Sequence[Row],
    big: dict[str, list[Sample]],
    small: dict[str, list[Sample]],
) -> list[dict[str, Any]]:
    results = []
    for row in rows:
        runs = big.get(row.key) or []
        if not runs or row.key == "hf":  # the same runs as hf_hash: one row is enough
            continue
        growth = [sample.growth_kib for sample in runs if sample.growth_kib is not None]
        small_growth = [
            sample.growth_kib for sample in small.get(row.key, ()) if sample.growth_kib is not None
        ]
        judged = row.key.startswith("ours")
        peak_growth = max(growth) * 1024 if growth else None
        results.append(
            {
                "key": row.key,
                "label": row.label,
                "peak_rss_bytes": peak_rss_bytes(runs),
                "growth_bytes": peak_growth,
                "small_growth_bytes": max(small_growth) * 1024 if small_growth else None,
                "baseline_bytes": max(
                    (s.baseline_kib * 1024 for s in runs if s.baseline_kib is not None),
                    default=None,
                ),
                "connections": max(
                    (s.connections for s in runs if s.connections is not None), default=None
                ),
                "threads": max((s.threads for s in runs if s.threads is not None), default=None),
                "met": (peak_growth < TARGET_MEMORY_BYTES)
                if judged and peak_growth is not None
                else None,
            }
        )
    return results


def memory_table(results: Sequence[dict[str, Any]]) -> str:
    def mb(value: float | None) -> str:
        return "-" if value is None else f"{value / MB:,.1f}"

    rows = [
        [
            result["label"],
            mb(result["peak_rss_bytes"]),
            mb(result["baseline_bytes"]),
            mb(result["growth_bytes"]),
            mb(result["small_growth_bytes"]),
            "-" if result["connections"] is None else str(result["connections"]),
            "-" if result["threads"] is None else str(result["threads"]),
            f"< {TARGET_MEMORY_BYTES / MB:.0f}" if result["met"] is not None else "-",
            met_text(result["met"]),
        ]
        for result in results
    ]
    headers = [
        "row",
        "peak RSS MB",
        "after imports MB",
        "growth MB",
        "growth MB, small file",
        "connections",
        "threads",
        "target MB",
        "target",
    ]
    return format_table(headers, rows)


def scaling_table(
    rows: Sequence[Row], samples: dict[str, list[Sample]], size: int, rate_bytes_per_s: int
) -> tuple[str, list[dict[str, Any]]]:
    one = samples.get("slow_1")
    base = median_mbps(size, one) if one else None
    lines, results = [], []
    for row in rows:
        runs = samples.get(row.key) or []
        if not runs:
            lines.append([row.label, "failed", "", "", "", "", "", ""])
            continue
        mbps = median_mbps(size, runs)
        connections = max(sample.connections or 0 for sample in runs)
        ratio = mbps / base if base else None
        target = TARGET_SCALING if row.key == f"slow_{SCALING_CONNECTIONS}" else None
        met = None if target is None or ratio is None else ratio >= target
        lines.append(
            [
                row.label,
                str(connections),
                f"{statistics.median(sample.wall_s for sample in runs):.2f}",
                f"{min(sample.wall_s for sample in runs):.2f}",
                f"{mbps:,.1f}",
                f"{mbps * MB / rate_bytes_per_s / max(connections, 1):.2f}",
                "-" if ratio is None else f"{ratio:.2f}x",
                "-" if target is None else f">= {target:.1f}x",
                met_text(met),
            ]
        )
        results.append(
            {
                "key": row.key,
                "median_mbps": mbps,
                "ratio_vs_one": ratio,
                "target": target,
                "met": met,
            }
        )
    headers = [
        "row",
        "connections",
        "median s",
        "min s",
        "MB/s",
        "of the limit per conn.",
        "vs 1 connection",
        "target",
        "target",
    ]
    return format_table(headers, lines), results


THROUGHPUT_LEGEND = """\
  MB/s          file bytes / seconds (1 MB = 1e6 bytes); "worst" is the slowest run.
  verification  what the time includes: "in-stream" rows hash as the bytes arrive and are
                checked before the time stops; "none" rows are hashed after the timing, for
                the check only; hf_transfer's two rows come from the same runs.
  timing        Python rows (ours, hf_transfer, httpx) time the call in a fresh interpreter
                after its imports; tool rows time the whole process or pipeline.
  CPU s         CPU seconds of the run (all threads; for pipelines, every process in it).
  peak RSS      the largest single process of the run, interpreter included: Python rows
                read their own VmHWM; tools are measured by GNU time (/usr/bin/time, n/a
                without it), for a pipeline the largest of curl, tee, openssl.
  others' cores cores kept busy during each run by processes other than the run and nginx
                (/proc/stat): on a shared machine, a run with a value near 1 or above lost
                a core to them, and its time means little."""

MEMORY_LEGEND = f"""\
  peak RSS MB        the whole process (interpreter, libraries, buffers), largest over the runs.
  after imports MB   the RSS of the fresh interpreter once it has imported what it needs.
  growth MB          peak RSS during the call (VmHWM reset just before) above that: what the
                     download itself holds (buffers, thread stacks, the HTTP client). The
                     target (< {TARGET_MEMORY_BYTES / MB:.0f} MB) is judged on this column.
  small file         the same growth for a small file: flat in file size means the two match.
  connections        the most connections open at once (sampled every 20 ms);
  threads            the most Python threads alive (the main and the sampler thread included)."""


# -- environment -------------------------------------------------------------------------------


def filesystem_of(path: Path) -> dict[str, str]:
    """The mount that holds `path`, from /proc/self/mountinfo (Linux)."""
    resolved, best = str(path.resolve()), {"mount": "?", "type": "?", "source": "?", "options": ""}
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return best
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        mount = fields[4].replace("\\040", " ")
        inside = resolved == mount or resolved.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best["mount"].replace("?", "")) and len(tail) >= 2:
            best = {"mount": mount, "type": tail[0], "source": tail[1], "options": fields[5]}
    return best


def default_base_dir() -> Path:
    """The system temp folder when it is on the repository's disk (not tmpfs), else the
    git-ignored .benchmarks/ in the repository."""
    temp = Path(tempfile.gettempdir())
    same_disk = temp.stat().st_dev == REPO_ROOT.stat().st_dev
    if same_disk and filesystem_of(temp)["type"] not in ("tmpfs", "ramfs"):
        return temp
    return REPO_ROOT / ".benchmarks"


def first_line(command: Sequence[str]) -> str | None:
    if shutil.which(command[0]) is None and not Path(command[0]).exists():
        return None
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    text = (completed.stdout or completed.stderr).strip()
    return text.splitlines()[0] if text else None


def package_version(name: str) -> str | None:
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return None


def versions(nginx: Path | None) -> dict[str, str | None]:
    return {
        "iris-models": package_version("iris-models"),
        "python": platform.python_version(),
        "nginx": first_line([str(nginx), "-v"]) if nginx else None,
        "curl": first_line(["curl", "--version"]),
        "openssl": first_line(["openssl", "version"]),
        "aria2c": first_line(["aria2c", "--version"]),
        "hf_transfer": package_version("hf_transfer"),
        "httpx": package_version("httpx"),
    }


def machine_info() -> dict[str, Any]:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.partition(":")[2].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model or platform.processor() or "unknown",
        "logical_cpus": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
    }


def memory_available_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def available_peers(skip_missing: bool) -> tuple[set[str], list[str]]:
    """The peers that can run; a missing one is an error saying how to install it, or, with
    --skip-missing, a note."""
    found = {name for name in ("curl", "openssl", "aria2c") if shutil.which(name)}
    if importlib.util.find_spec("hf_transfer") is not None:
        found.add("hf_transfer")
    missing = [name for name in INSTALL_HINTS if name not in found]
    notes = [
        f"{name} is not installed ({INSTALL_HINTS[name]}): its rows are left out"
        for name in missing
    ]
    if missing and not skip_missing:
        hints = "; ".join(f"{name}: {INSTALL_HINTS[name]}" for name in missing)
        raise BenchmarkError(f"peers missing ({hints}), or pass --skip-missing to leave them out")
    return found, notes


def warm_page_cache(path: Path) -> None:
    # nginx then serves from memory: the benchmark measures the client, not the source disk.
    with open(path, "rb", buffering=0) as stream:
        buffer = bytearray(16 * MIB)
        while stream.readinto(buffer):
            pass


# -- driver ----------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024, help="the file (%(default)s MiB)")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds (%(default)s)")
    parser.add_argument(
        "--warmup", type=int, default=1, help="untimed (but checked) rounds first (%(default)s)"
    )
    parser.add_argument(
        "--dir",
        type=Path,
        help="where the served file and the downloads go (default: a new temporary folder on "
        "the repository's disk, not tmpfs)",
    )
    parser.add_argument("--json", type=Path, help="also write the raw samples here")
    parser.add_argument(
        "--rate-mib",
        type=float,
        default=8.0,
        help="nginx's per-connection limit for the scaling table, MiB/s (%(default)s)",
    )
    parser.add_argument(
        "--scaling-s",
        type=float,
        default=10.0,
        help="the scaling file takes this long at one connection at the limit (%(default)s)",
    )
    parser.add_argument(
        "--skip-missing",
        action="store_true",
        help="leave out a peer whose tool is not installed (default: an error)",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.size_mib < 1 or args.rounds < 1 or args.warmup < 0:
        parser.error("--size-mib and --rounds must be at least 1, --warmup at least 0")
    if args.rate_mib <= 0 or args.scaling_s <= 0:
        parser.error("--rate-mib and --scaling-s must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child)
    sys.path.insert(0, str(REPO_ROOT))
    from tests.servers.nginx import NginxServer, find_nginx

    nginx = find_nginx()
    if nginx is None:
        raise BenchmarkError("nginx is not installed (apt-get install nginx-light)")
    available, notes = available_peers(args.skip_missing)
    machine, found_versions = machine_info(), versions(nginx)
    print(f"machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs, {machine['system']}")
    print("versions: " + "; ".join(f"{name} {value}" for name, value in found_versions.items()))
    for note in notes:
        print(f"note: {note}")

    size = args.size_mib * MIB
    rate = int(args.rate_mib * MIB)
    scaling_size = int(rate * args.scaling_s) // MIB * MIB
    base = args.dir if args.dir is not None else default_base_dir()
    base.mkdir(parents=True, exist_ok=True)
    needed = 2 * size + scaling_size + 64 * MIB
    if shutil.disk_usage(base).free < needed:
        message = f"{base} has less than the {needed / MIB:,.0f} MiB free that the run needs"
        raise BenchmarkError(message)
    available_memory = memory_available_bytes()
    if available_memory is not None and available_memory < 3 * size:
        print(
            f"note: only {available_memory / MIB:,.0f} MiB of memory available; the served file "
            "and the downloads may not all stay in the page cache"
        )
    folder = Path(tempfile.mkdtemp(prefix="iris-bench-download-", dir=base))
    filesystem = filesystem_of(folder)
    print(
        f"downloads go to {folder}: {filesystem['type']} on {filesystem['source']} mounted at "
        f"{filesystem['mount']} ({filesystem['options']})"
    )
    if filesystem["type"] in ("tmpfs", "ramfs"):
        print("note: that is memory, not a disk: the times leave out the filesystem's cost")
    load_before = " ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"load average (1, 5, 15 min) at start: {load_before}")

    out_dir = folder / "out"
    out_dir.mkdir()
    out = out_dir / "download.bin"
    server = NginxServer(folder / "www", rate_bytes_per_s=rate, workdir=folder / "nginx")
    try:
        server.start()
        Contention.nginx_pid = int(server.pid_path.read_text().strip())
        progress(
            f"writing the served files ({args.size_mib:,} MiB and {scaling_size / MIB:,.0f} MiB) ..."
        )
        big_url, big_sha = server.put_random("big.bin", size, SEED)
        _, small_sha = server.put_random("scaling.bin", scaling_size, SEED + 1)
        for name in ("big.bin", "scaling.bin"):
            warm_page_cache(server.path(name))
        big = Target(big_url, size, big_sha)
        slow = Target(server.url("scaling.bin", "slow"), scaling_size, small_sha)
        small = Target(server.url("scaling.bin"), scaling_size, small_sha)

        cases = main_cases(big, available)
        samples, problems = time_cases(cases, args.rounds, args.warmup, out, "throughput")
        small_cases = [
            ours_case(key, label, small, connections)
            for key, label, connections in (
                ("ours", "ours (adaptive connections)", None),
                ("ours_1", "ours --connections 1", 1),
                ("ours_4", "ours --connections 4", 4),
                ("ours_8", "ours --connections 8", 8),
            )
        ]
        small_samples, small_problems = memory_only(small_cases, out)
        limit = f"{args.rate_mib:g} MiB/s"
        scaling_cases = [
            ours_case("slow_1", f"ours --connections 1, {limit} each", slow, 1),
            ours_case(
                f"slow_{SCALING_CONNECTIONS}",
                f"ours --connections {SCALING_CONNECTIONS}, {limit} each",
                slow,
                SCALING_CONNECTIONS,
            ),
            ours_case("slow_auto", f"ours (adaptive), {limit} each", slow, None),
        ]
        scaling_samples, scaling_problems = time_cases(
            scaling_cases, args.rounds, 0, out, "scaling"
        )
        startup_ms = {
            tool: median_ms(lambda tool=tool: run_process([tool, "--version"]), 5)
            for tool in ("curl", "aria2c")
            if tool in available
        }
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    problems += small_problems + scaling_problems
    load_after = " ".join(f"{value:.2f}" for value in os.getloadavg())

    rows = [row for case in cases for row in case.rows]
    print()
    print(
        f"== {args.size_mib:,} MiB from loopback nginx to {filesystem['type']}, "
        f"{args.rounds} round-robin rounds after {args.warmup} warm-up; output deleted and "
        "sync before each run"
    )
    print(throughput_table(rows, samples, size))
    print(THROUGHPUT_LEGEND)
    for tool, ms in startup_ms.items():
        print(f"{tool} --version (process start-up): {ms:.1f} ms")
    ratios = compute_ratios(RATIOS, samples, size)
    print()
    print("== ratios (median throughput of ours over the peer's, same run)")
    print(ratio_table(ratios))
    print("  ratio (min): the same from each side's fastest run.")
    memory = memory_rows(rows, samples, small_samples)
    print()
    print(
        f"== peak memory, each run a fresh process ({args.size_mib:,} MiB file; small file "
        f"{scaling_size / MIB:,.0f} MiB; 1 MB = 1e6 bytes)"
    )
    print(memory_table(memory))
    print(MEMORY_LEGEND)
    scaling_rows = [row for case in scaling_cases for row in case.rows]
    table, scaling = scaling_table(scaling_rows, scaling_samples, scaling_size, rate)
    print()
    print(
        f"== scaling: {scaling_size / MIB:,.0f} MiB through /slow/, nginx limit_rate {limit} per "
        f"connection ({scaling_size / rate:.1f} s at one connection); {args.rounds} rounds"
    )
    print(table)
    print(
        "  of the limit per conn.: MB/s / (limit x connections); near 1.00 means every "
        "connection ran at the limit."
    )
    print()
    if problems:
        print("WARNING, runs that failed or did not verify (left out of the tables):")
        for problem in problems:
            print(f"  {problem}")
    else:
        print("check: every run's bytes matched the served file's sha256")
    print(f"load average at start: {load_before}; at end: {load_after}")

    if args.json is not None:
        document = {
            "machine": machine,
            "versions": found_versions,
            "filesystem": filesystem,
            "load_average": {"start": load_before, "end": load_after},
            "size_bytes": size,
            "rounds": args.rounds,
            "warmup": args.warmup,
            "rows": {row.key: {"label": row.label, "verified": row.verified} for row in rows},
            "samples": {key: [asdict(s) for s in runs] for key, runs in samples.items()},
            "ratios": ratios,
            "memory": memory,
            "small_file": {
                "size_bytes": scaling_size,
                "samples": {key: [asdict(s) for s in runs] for key, runs in small_samples.items()},
            },
            "scaling": {
                "size_bytes": scaling_size,
                "rate_bytes_per_s": rate,
                "samples": {
                    key: [asdict(s) for s in runs] for key, runs in scaling_samples.items()
                },
                "results": scaling,
            },
            "process_startup_ms": startup_ms,
            "problems": problems,
            "notes": notes,
        }
        args.json.write_text(json.dumps(document, indent=2) + "\n")
        print(f"raw numbers written to {args.json}")
    return 1 if problems else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchmarkError as error:
        sys.exit(f"bench_download: {error}")
