"""FileDownload against real servers: nginx for honest HTTP (ranges, rate limits, a location that
ignores ranges) and the fault server for everything that goes wrong. Every case ends in a file
whose bytes and digest are right, or in a clear error: never a wrong file reported as success."""

from __future__ import annotations

import concurrent.futures
import errno
import hashlib
import json
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.disks import small_tmpfs
from tests.servers.fault_server import (
    ChangeBody,
    Corrupt,
    FaultServer,
    IgnoreRange,
    RandomReset,
    Redirect,
    Request,
    ResetAfter,
    Stall,
    Status,
    Trickle,
    Truncate,
    WrongLength,
)
from tests.servers.nginx import NginxRequest, NginxServer

from iris_models.download import (
    FileDownload,
    FileResult,
    FileSource,
    ResumeState,
    TokenBucket,
    TransferOptions,
)
from iris_models.errors import (
    DownloadPaused,
    InsufficientSpaceError,
    IntegrityError,
    NetworkError,
)

pytestmark = pytest.mark.usefixtures("clean_network_environment")

KIB = 1024
MIB = 1024 * KIB
BUFFER = 64 * KIB
PIECE = 64 * KIB
PROBE_RANGE = "bytes=0-0"
CHILD = Path(__file__).with_name("download_child.py")
GUARD_S = 120.0
"""Only so that a download that never ends fails the test instead of hanging the suite."""


# --- helpers -------------------------------------------------------------------------------------


def random_body(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def fast_options(**changes: Any) -> TransferOptions:
    """One connection, small buffers and splits (several connections on small files), one
    request per connection's range (the faults here count requests and bytes per request;
    chunking has its own tests), short backoffs; a stall timeout long enough that a busy
    machine does not fake a stall."""
    settings: dict[str, Any] = {
        "connections": 1,
        "buffer_bytes": BUFFER,
        "min_split_bytes": 256 * KIB,
        "chunk_bytes": 1 << 40,
        "stall_timeout_s": 5.0,
        "retries": 4,
        "backoff_s": 0.01,
        "max_backoff_s": 0.05,
    }
    settings.update(changes)
    return TransferOptions(**settings)


def assert_verified(result: FileResult, body: bytes, part: Path) -> None:
    """The result names the right digest, and the file holds exactly the body."""
    assert result.sha256 == digest_of(body)
    assert result.size == len(body)
    assert result.path == part
    assert part.read_bytes() == body


def finished_requests(server: FaultServer, path: str) -> list[Request]:
    """The server's log for `path` once every answer has ended (the client can read the last
    byte a moment before the server's thread notes that it sent it)."""
    deadline = time.monotonic() + 10
    while True:
        requests = server.requests(path)
        if all(request.finished for request in requests) or time.monotonic() > deadline:
            return requests
        time.sleep(0.01)


def data_requests(requests: list[Request]) -> list[Request]:
    """GETs for the file's bytes: not the one-byte probe."""
    return [r for r in requests if r.method == "GET" and r.range != PROBE_RANGE]


def data_bytes_sent(server: FaultServer, path: str) -> int:
    return sum(r.body_bytes_sent for r in data_requests(finished_requests(server, path)))


def nginx_data_requests(nginx: NginxServer, name: str, *, at_least: int) -> list[NginxRequest]:
    entries = nginx.requests(name, at_least=at_least + 1)
    return [entry for entry in entries if entry.range != PROBE_RANGE]


class Retries:
    """An on_retry callback that remembers what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, float, str]] = []
        self.first = threading.Event()

    def __call__(self, attempt: int, delay_s: float, reason: str) -> None:
        self.calls.append((attempt, delay_s, reason))
        self.first.set()

    @property
    def delays(self) -> list[float]:
        return [delay for _, delay, _ in self.calls]


class Checkpoints:
    """An on_checkpoint callback that keeps every state, as JSON text (what a store saves)."""

    def __init__(self) -> None:
        self.saved: list[str] = []

    def __call__(self, state: ResumeState) -> None:
        self.saved.append(json.dumps(state.to_json()))

    def last(self) -> ResumeState:
        assert self.saved, "no checkpoint was saved"
        return ResumeState.from_json(json.loads(self.saved[-1]))


@pytest.fixture
def executor() -> Iterator[concurrent.futures.ThreadPoolExecutor]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        yield pool


def run_in_background(
    executor: concurrent.futures.ThreadPoolExecutor, download: FileDownload
) -> concurrent.futures.Future[FileResult]:
    return executor.submit(download.run)


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = GUARD_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {timeout_s:g} s for {what}")
        time.sleep(0.005)


def run_with_request_cap(
    executor: concurrent.futures.ThreadPoolExecutor,
    download: FileDownload,
    server: FaultServer,
    max_requests: int,
) -> FileResult:
    """Runs the download; if the server has seen `max_requests` requests and the download is
    still going, cancels it and fails: it was looping instead of giving up."""
    future = run_in_background(executor, download)
    while not future.done():
        if server.count() > max_requests:
            download.cancel()
            with pytest.raises(DownloadPaused):
                future.result(GUARD_S)
            pytest.fail(f"over {max_requests} requests for one file without giving up")
        time.sleep(0.01)
    return future.result()


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


@pytest.fixture
def other_server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


@pytest.fixture
def part(tmp_path: Path) -> Path:
    return tmp_path / "downloads" / "model.gguf.part"


# --- nginx: honest HTTP --------------------------------------------------------------------------


@pytest.mark.parametrize("connections", [1, 4])
def test_nginx_download_with_catalog_digest_is_verified(
    nginx: NginxServer, part: Path, connections: int
) -> None:
    url, hex_digest = nginx.put_random("m.gguf", 4 * MIB, seed=1)
    source = FileSource(urls=[url], size=4 * MIB, sha256=f"sha256:{hex_digest}")

    download = FileDownload(source, part, options=fast_options(connections=connections))
    result = download.run()

    assert_verified(result, nginx.path("m.gguf").read_bytes(), part)
    assert result.digest_source == "catalog"
    assert result.url == url
    assert result.fetched_bytes == 4 * MIB
    progress = download.progress()
    assert (progress.done_bytes, progress.hashed_bytes, progress.total_bytes) == (4 * MIB,) * 3
    data = nginx_data_requests(nginx, "m.gguf", at_least=1)
    assert data
    assert all(entry.status == 206 and entry.range is not None for entry in data)
    assert all(entry.if_range == nginx.etag("m.gguf") for entry in data)


def test_nginx_slow_location_serves_four_distinct_ranged_requests_in_parallel(
    nginx_factory: Callable[..., NginxServer], part: Path
) -> None:
    """A per-connection limit (1 MiB/s each): four connections each get ranged requests of
    their own (which of 1 and 4 finishes first is not asserted: the machine is shared)."""
    nginx = nginx_factory(rate_bytes_per_s=1 * MIB)
    _, hex_digest = nginx.put_random("m.gguf", 2 * MIB, seed=3)
    source = FileSource(urls=[nginx.url("m.gguf", "slow")], sha256=f"sha256:{hex_digest}")

    result = FileDownload(source, part, options=fast_options(connections=4)).run()

    assert_verified(result, nginx.path("m.gguf").read_bytes(), part)
    data = nginx_data_requests(nginx, "m.gguf", at_least=4)
    starts = {
        int(entry.range.removeprefix("bytes=").split("-")[0]) for entry in data if entry.range
    }
    assert len(starts) >= 4
    assert sum(entry.body_bytes_sent for entry in data) >= 2 * MIB


def test_nginx_adaptive_connections_download_is_verified(nginx: NginxServer, part: Path) -> None:
    url, hex_digest = nginx.put_random("m.gguf", 4 * MIB, seed=4)
    source = FileSource(urls=[url], sha256=f"sha256:{hex_digest}")

    result = FileDownload(source, part, options=fast_options(connections=None)).run()

    assert_verified(result, nginx.path("m.gguf").read_bytes(), part)


def test_nginx_adaptive_connections_open_another_while_each_is_slow(
    nginx_factory: Callable[..., NginxServer], part: Path
) -> None:
    nginx = nginx_factory(rate_bytes_per_s=1 * MIB)
    _, hex_digest = nginx.put_random("m.gguf", 2 * MIB, seed=5)
    source = FileSource(urls=[nginx.url("m.gguf", "slow")], sha256=f"sha256:{hex_digest}")
    # About 1 MiB/s on one connection is far below slow_connection_bytes_per_s: after its
    # first second the download opens another (small splits: even a late one finds work).
    options = fast_options(connections=None, min_split_bytes=64 * KIB)

    result = FileDownload(source, part, options=options).run()

    assert_verified(result, nginx.path("m.gguf").read_bytes(), part)
    assert len(nginx_data_requests(nginx, "m.gguf", at_least=2)) >= 2


def test_nginx_without_digest_is_refused_before_any_byte_is_fetched(
    nginx: NginxServer, part: Path
) -> None:
    url, _ = nginx.put_random("m.gguf", 1 * MIB, seed=6)

    with pytest.raises(IntegrityError, match="no digest is known"):
        FileDownload(FileSource(urls=[url]), part, options=fast_options()).run()

    assert not part.exists()
    assert nginx_data_requests(nginx, "m.gguf", at_least=0) == []


def test_nginx_without_digest_is_kept_when_unverified_downloads_are_allowed(
    nginx: NginxServer, part: Path
) -> None:
    url, _ = nginx.put_random("m.gguf", 1 * MIB, seed=6)
    source = FileSource(urls=[url], allow_unverified=True)

    result = FileDownload(source, part, options=fast_options()).run()

    assert_verified(result, nginx.path("m.gguf").read_bytes(), part)
    assert result.digest_source == "none"


@pytest.mark.parametrize("delta", [-1, 1])
def test_nginx_size_that_disagrees_with_the_catalog_is_refused_before_downloading(
    nginx: NginxServer, part: Path, delta: int
) -> None:
    url, hex_digest = nginx.put_random("m.gguf", 1 * MIB, seed=7)
    source = FileSource(urls=[url], size=1 * MIB + delta, sha256=f"sha256:{hex_digest}")

    with pytest.raises(IntegrityError, match="catalog says"):
        FileDownload(source, part, options=fast_options()).run()

    assert not part.exists()
    assert nginx_data_requests(nginx, "m.gguf", at_least=0) == []


def test_nginx_location_that_ignores_ranges_is_fetched_in_one_stream(
    nginx: NginxServer, part: Path
) -> None:
    _, hex_digest = nginx.put_random("m.gguf", 4 * MIB, seed=8)
    url = nginx.url("m.gguf", "nocache")
    source = FileSource(urls=[url], sha256=f"sha256:{hex_digest}")

    result = FileDownload(source, part, options=fast_options(connections=4)).run()

    assert_verified(result, nginx.path("m.gguf").read_bytes(), part)
    assert result.url == url
    entries = nginx.requests("m.gguf", at_least=2)
    streams = [entry for entry in entries if entry.range != PROBE_RANGE]
    assert len(streams) == 1
    assert streams[0].status == 200
    assert streams[0].body_bytes_sent == 4 * MIB


def test_nginx_empty_file_downloads_as_an_empty_verified_file(
    nginx: NginxServer, part: Path
) -> None:
    url = nginx.put("empty.gguf", b"")
    source = FileSource(urls=[url], sha256=digest_of(b""))

    result = FileDownload(source, part, options=fast_options(connections=4)).run()

    assert_verified(result, b"", part)
    assert result.fetched_bytes == 0


def test_rate_limit_holds_the_average_to_the_token_bucket_rate(
    nginx: NginxServer, part: Path
) -> None:
    size, rate = 1 * MIB, 1 * MIB
    url, hex_digest = nginx.put_random("m.gguf", size, seed=9)
    bucket = TokenBucket(rate)
    options = fast_options(connections=2, rate_limit=bucket)

    source = FileSource(urls=[url], sha256=f"sha256:{hex_digest}")
    download = FileDownload(source, part, options=options)
    started = time.monotonic()
    result = download.run()
    elapsed = time.monotonic() - started

    assert_verified(result, nginx.path("m.gguf").read_bytes(), part)
    # A full bucket lets `burst_bytes` out at once; everything after it comes at the rate.
    assert elapsed >= (size - bucket.burst_bytes) / rate


# --- the fault server: digests -------------------------------------------------------------------


def test_hub_digest_from_x_linked_etag_is_used_and_reported_as_server(
    fault_server: FaultServer, other_server: FaultServer, part: Path
) -> None:
    body = random_body(1 * MIB, seed=10)
    cdn = other_server.serve("/blob", body)
    hub = fault_server.serve(
        "/m",
        b"",
        faults=[
            Status(
                302,
                headers=(
                    ("Location", cdn),
                    ("X-Linked-Etag", f'"{hashlib.sha256(body).hexdigest()}"'),
                ),
            )
        ],
    )

    result = FileDownload(FileSource(urls=[hub]), part, options=fast_options()).run()

    assert_verified(result, body, part)
    assert result.digest_source == "server"
    assert result.url == cdn


def test_hub_digest_that_the_bytes_do_not_match_raises_integrity_error(
    fault_server: FaultServer, other_server: FaultServer, part: Path
) -> None:
    body = random_body(1 * MIB, seed=11)
    cdn = other_server.serve("/blob", body)
    wrong = hashlib.sha256(b"another file").hexdigest()
    hub = fault_server.serve(
        "/m",
        b"",
        faults=[Status(302, headers=(("Location", cdn), ("X-Linked-Etag", f'"{wrong}"')))],
    )

    with pytest.raises(IntegrityError, match="not the expected"):
        FileDownload(FileSource(urls=[hub]), part, options=fast_options()).run()

    # One full fetch, one full re-fetch in case the first was damaged on the way, then no more.
    assert data_bytes_sent(other_server, "/blob") == 2 * len(body)


# --- the fault server: broken transfers ----------------------------------------------------------


@pytest.mark.parametrize("times", [1, 3])
def test_reset_mid_body_resumes_from_the_last_byte_received(
    fault_server: FaultServer, part: Path, times: int
) -> None:
    body = random_body(2 * MIB, seed=12)
    url = fault_server.serve(
        "/m", body, faults=[ResetAfter(300 * KIB, after_requests=1, times=times)]
    )
    retries = Retries()

    result = FileDownload(
        FileSource(urls=[url], sha256=digest_of(body)),
        part,
        options=fast_options(),
        on_retry=retries,
    ).run()

    assert_verified(result, body, part)
    assert len(retries.calls) == times
    assert len(data_requests(finished_requests(fault_server, "/m"))) == times + 1
    assert data_bytes_sent(fault_server, "/m") - len(body) <= BUFFER


def test_random_resets_on_four_connections_still_give_the_right_file(
    fault_server: FaultServer, part: Path
) -> None:
    body = random_body(4 * MIB, seed=13)
    url = fault_server.serve("/m", body, faults=[RandomReset(seed=5, after_requests=1, times=8)])

    result = FileDownload(
        FileSource(urls=[url], sha256=digest_of(body)), part, options=fast_options(connections=4)
    ).run()

    assert_verified(result, body, part)


@pytest.mark.parametrize("after_requests", [0, 1], ids=["probe", "ranged"])
def test_server_error_twice_is_retried_and_completes(
    fault_server: FaultServer, part: Path, after_requests: int
) -> None:
    body = random_body(1 * MIB, seed=14)
    url = fault_server.serve(
        "/m", body, faults=[Status(500, after_requests=after_requests, times=2)]
    )
    retries = Retries()

    result = FileDownload(
        FileSource(urls=[url], sha256=digest_of(body)),
        part,
        options=fast_options(),
        on_retry=retries,
    ).run()

    assert_verified(result, body, part)
    assert len(retries.calls) == 2


@pytest.mark.parametrize("status", [503, 429])
def test_retry_after_on_a_ranged_request_is_honoured(
    fault_server: FaultServer, part: Path, status: int
) -> None:
    body = random_body(1 * MIB, seed=15)
    url = fault_server.serve(
        "/m", body, faults=[Status(status, retry_after=1, after_requests=1, times=1)]
    )
    retries = Retries()

    result = FileDownload(
        FileSource(urls=[url], sha256=digest_of(body)),
        part,
        options=fast_options(),
        on_retry=retries,
    ).run()

    assert_verified(result, body, part)
    assert len(retries.calls) == 1
    assert retries.delays[0] >= 1.0
    assert result.duration_s >= 1.0


@pytest.mark.parametrize("status", [503, 429])
def test_retry_after_on_the_probe_is_honoured(
    fault_server: FaultServer, part: Path, status: int
) -> None:
    body = random_body(256 * KIB, seed=16)
    url = fault_server.serve("/m", body, faults=[Status(status, retry_after=1, times=1)])
    retries = Retries()

    result = FileDownload(
        FileSource(urls=[url], sha256=digest_of(body)),
        part,
        options=fast_options(),
        on_retry=retries,
    ).run()

    assert_verified(result, body, part)
    assert len(retries.calls) == 1
    assert retries.delays[0] >= 1.0


def test_server_that_stops_honouring_ranges_mid_download_still_gives_the_right_file(
    fault_server: FaultServer, part: Path
) -> None:
    body = random_body(2 * MIB, seed=17)
    faults = [
        ResetAfter(300 * KIB, after_requests=1, times=1),
        IgnoreRange(after_requests=2, times=1),
    ]
    url = fault_server.serve("/m", body, faults=faults)

    result = FileDownload(
        FileSource(urls=[url], sha256=digest_of(body)), part, options=fast_options()
    ).run()

    assert_verified(result, body, part)
    statuses = [r.status for r in data_requests(finished_requests(fault_server, "/m"))]
    assert statuses[:2] == [206, 200]  # then the whole file in one stream


@pytest.mark.parametrize("trigger", ["ignore-range", "change-body", "mirror-fails"])
def test_restart_while_other_connections_are_still_running_completes(
    fault_server: FaultServer, other_server: FaultServer, part: Path, trigger: str
) -> None:
    """One connection hits a fault that needs a fresh start (ranges ignored, a new version,
    a URL that gives up) while another one is still trickling its range."""
    body, new = random_body(2 * MIB, seed=17), random_body(2 * MIB, seed=18)
    trickle = Trickle(rate_bytes_per_s=2 * MIB)
    fault = {
        "ignore-range": IgnoreRange(after_requests=2, times=1),
        "change-body": ChangeBody(body=new, etag='"v2"', after_requests=2),
        "mirror-fails": ResetAfter(0, after_requests=2),
    }[trigger]
    urls = [fault_server.serve("/m", body, faults=[trickle, fault])]
    expected = new if trigger == "change-body" else body
    if trigger == "mirror-fails":
        urls.append(other_server.serve("/m", body))

    result = FileDownload(
        FileSource(urls=urls, sha256=digest_of(expected)),
        part,
        options=fast_options(connections=2, retries=2),
    ).run()

    assert_verified(result, expected, part)


def test_server_without_ranges_that_truncates_once_restarts_the_stream_and_completes(
    fault_server: FaultServer, part: Path
) -> None:
    body = random_body(1 * MIB, seed=18)
    url = fault_server.serve(
        "/m", body, ranges=False, faults=[Truncate(300 * KIB, after_requests=1, times=1)]
    )
    retries = Retries()

    result = FileDownload(
        FileSource(urls=[url], sha256=digest_of(body)),
        part,
        options=fast_options(connections=4),
        on_retry=retries,
    ).run()

    assert_verified(result, body, part)
    assert len(retries.calls) == 1
    streams = data_requests(finished_requests(fault_server, "/m"))
    assert [r.status for r in streams] == [200, 200]  # broken at 300 KiB, then again from 0
    assert data_bytes_sent(fault_server, "/m") == 300 * KIB + len(body)


def test_truncated_body_is_retried_and_completes(fault_server: FaultServer, part: Path) -> None:
    body = random_body(1 * MIB, seed=19)
    url = fault_server.serve("/m", body, faults=[Truncate(100 * KIB, after_requests=1, times=2)])
    retries = Retries()

    result = FileDownload(
        FileSource(urls=[url], sha256=digest_of(body)),
        part,
        options=fast_options(),
        on_retry=retries,
    ).run()

    assert_verified(result, body, part)
    assert len(retries.calls) == 2
    assert data_bytes_sent(fault_server, "/m") - len(body) <= BUFFER


def test_stall_is_detected_after_the_stall_timeout_and_the_range_reconnects(
    fault_server: FaultServer, part: Path
) -> None:
    body = random_body(1 * MIB, seed=20)
    url = fault_server.serve(
        "/m", body, faults=[Stall(after_bytes=256 * KIB, seconds=None, after_requests=1, times=1)]
    )
    retries = Retries()

    result = FileDownload(
        FileSource(urls=[url], sha256=digest_of(body)),
        part,
        options=fast_options(stall_timeout_s=0.5),
        on_retry=retries,
    ).run()

    assert_verified(result, body, part)
    assert len(retries.calls) == 1
    assert "stalled" in retries.calls[0][2]
    # The second request starts where the stalled one stopped (which is still stalling: its
    # answer only ends when the server stops).
    ranges = [r.range for r in data_requests(fault_server.requests("/m"))]
    assert ranges == [f"bytes=0-{len(body) - 1}", f"bytes={256 * KIB}-{len(body) - 1}"]


def test_trickling_server_completes(fault_server: FaultServer, part: Path) -> None:
    body = random_body(512 * KIB, seed=21)
    url = fault_server.serve("/m", body, faults=[Trickle(rate_bytes_per_s=2 * MIB)])

    result = FileDownload(
        FileSource(urls=[url], sha256=digest_of(body)), part, options=fast_options(connections=2)
    ).run()

    assert_verified(result, body, part)


def test_redirect_on_the_first_request_fetches_from_the_target_server(
    fault_server: FaultServer, other_server: FaultServer, part: Path
) -> None:
    body = random_body(1 * MIB, seed=22)
    target = other_server.serve("/m", body)
    url = fault_server.serve("/m", b"", faults=[Redirect(to=other_server)])

    result = FileDownload(
        FileSource(urls=[url], sha256=digest_of(body)), part, options=fast_options(connections=2)
    ).run()

    assert_verified(result, body, part)
    assert result.url == target
    assert data_requests(finished_requests(fault_server, "/m")) == []
    assert data_bytes_sent(other_server, "/m") >= len(body)


def test_redirect_of_a_ranged_request_is_followed(
    fault_server: FaultServer, other_server: FaultServer, part: Path
) -> None:
    body = random_body(1 * MIB, seed=23)
    other_server.serve("/m", body)
    url = fault_server.serve("/m", body, faults=[Redirect(to=other_server, after_requests=1)])

    result = FileDownload(
        FileSource(urls=[url], sha256=digest_of(body)), part, options=fast_options()
    ).run()

    assert_verified(result, body, part)
    assert data_bytes_sent(fault_server, "/m") == 0
    assert data_bytes_sent(other_server, "/m") == len(body)


@pytest.mark.parametrize("delta", [100_000, -100_000])
def test_wrong_content_length_once_still_gives_the_right_file(
    fault_server: FaultServer, part: Path, delta: int
) -> None:
    body = random_body(1 * MIB, seed=24)
    url = fault_server.serve("/m", body, faults=[WrongLength(delta, after_requests=1, times=1)])

    result = FileDownload(
        FileSource(urls=[url], sha256=digest_of(body)), part, options=fast_options()
    ).run()

    assert_verified(result, body, part)


@pytest.mark.parametrize(
    "delta",
    [
        100_000,
        -100_000,
    ],
)
def test_content_length_wrong_on_every_response_ends_in_a_file_or_a_clear_error(
    fault_server: FaultServer,
    part: Path,
    executor: concurrent.futures.ThreadPoolExecutor,
    delta: int,
) -> None:
    body = random_body(1 * MIB, seed=25)
    url = fault_server.serve("/m", body, faults=[WrongLength(delta, after_requests=1)])
    download = FileDownload(
        FileSource(urls=[url], sha256=digest_of(body)), part, options=fast_options(retries=3)
    )

    try:
        result = run_with_request_cap(executor, download, fault_server, max_requests=100)
    except NetworkError:
        return  # a clear error is an acceptable end
    assert_verified(result, body, part)


# --- the fault server: changed and corrupt bodies -------------------------------------------------


def change_after_first_range(new_body: bytes, etag: str | None = '"v2"') -> list[Any]:
    """The first ranged request gets 300 KiB of version 1, then a reset; every request after
    that sees version 2."""
    return [
        ResetAfter(300 * KIB, after_requests=1, times=1),
        ChangeBody(body=new_body, etag=etag, after_requests=2),
    ]


def test_changed_body_mid_download_restarts_and_keeps_the_new_version_when_unverified(
    fault_server: FaultServer, part: Path
) -> None:
    old, new = random_body(1 * MIB, seed=26), random_body(1 * MIB, seed=27)
    url = fault_server.serve("/m", old, faults=change_after_first_range(new))
    source = FileSource(urls=[url], allow_unverified=True)

    result = FileDownload(source, part, options=fast_options()).run()

    assert_verified(result, new, part)
    assert result.digest_source == "none"


def test_changed_body_mid_download_matches_an_updated_catalog_digest(
    fault_server: FaultServer, part: Path
) -> None:
    old, new = random_body(1 * MIB, seed=26), random_body(1 * MIB + 5, seed=27)
    url = fault_server.serve("/m", old, faults=change_after_first_range(new))

    result = FileDownload(
        FileSource(urls=[url], sha256=digest_of(new)), part, options=fast_options()
    ).run()

    assert_verified(result, new, part)


@pytest.mark.parametrize("etag", ['"v2"', '"v1"'], ids=["new-etag", "same-etag"])
def test_changed_body_against_the_old_catalog_digest_raises_integrity_error(
    fault_server: FaultServer, part: Path, etag: str
) -> None:
    """With the ETag kept (a broken server), the halves of two versions meet in the part file:
    the digest catches it, and the re-fetch gives the new version, which is not the file
    the catalog describes."""
    old, new = random_body(1 * MIB, seed=26), random_body(1 * MIB, seed=27)
    url = fault_server.serve("/m", old, faults=change_after_first_range(new, etag))

    with pytest.raises(IntegrityError):
        FileDownload(
            FileSource(urls=[url], sha256=digest_of(old)), part, options=fast_options()
        ).run()


def test_corrupt_byte_without_piece_hashes_refetches_the_whole_file_once(
    fault_server: FaultServer, part: Path
) -> None:
    body = random_body(1 * MIB, seed=28)
    url = fault_server.serve("/m", body, faults=[Corrupt((300_000,), after_requests=1, times=1)])

    result = FileDownload(
        FileSource(urls=[url], sha256=digest_of(body)), part, options=fast_options()
    ).run()

    assert_verified(result, body, part)
    assert data_bytes_sent(fault_server, "/m") == 2 * len(body)


def piece_hashes(body: bytes, piece_size: int = PIECE) -> list[str]:
    return [
        hashlib.sha256(body[start : start + piece_size]).hexdigest()
        for start in range(0, len(body), piece_size)
    ]


def test_corrupt_byte_with_piece_hashes_refetches_only_the_bad_piece(
    fault_server: FaultServer, part: Path
) -> None:
    body = random_body(1 * MIB + 1000, seed=29)  # a short last piece too
    url = fault_server.serve("/m", body, faults=[Corrupt((300_000,), after_requests=1, times=1)])
    source = FileSource(
        urls=[url], sha256=digest_of(body), piece_size=PIECE, piece_sha256=piece_hashes(body)
    )

    result = FileDownload(source, part, options=fast_options()).run()

    assert_verified(result, body, part)
    bad_piece = (300_000 // PIECE) * PIECE
    data = data_requests(finished_requests(fault_server, "/m"))
    assert [r.range for r in data] == [
        f"bytes=0-{len(body) - 1}",
        f"bytes={bad_piece}-{bad_piece + PIECE - 1}",
    ]
    assert sum(r.body_bytes_sent for r in data) == len(body) + PIECE
    assert result.fetched_bytes == len(body) + PIECE


def test_corrupt_byte_with_piece_hashes_on_four_connections_refetches_only_the_bad_piece(
    fault_server: FaultServer, part: Path
) -> None:
    body = random_body(2 * MIB, seed=29)
    url = fault_server.serve("/m", body, faults=[Corrupt((1000,), after_requests=1, times=1)])
    source = FileSource(
        urls=[url], sha256=digest_of(body), piece_size=PIECE, piece_sha256=piece_hashes(body)
    )

    result = FileDownload(source, part, options=fast_options(connections=4)).run()

    assert_verified(result, body, part)
    # Which connection's request comes first is up to the threads: the corruption lands only
    # when the first data request is the one that starts at byte 0.
    first = data_requests(finished_requests(fault_server, "/m"))[0]
    landed = first.range is not None and first.range.startswith("bytes=0-")
    assert result.fetched_bytes == len(body) + (PIECE if landed else 0)


def test_corrupt_piece_on_every_fetch_raises_integrity_error_after_a_few_tries(
    fault_server: FaultServer, part: Path
) -> None:
    body = random_body(1 * MIB, seed=30)
    url = fault_server.serve("/m", body, faults=[Corrupt((300_000,), after_requests=1)])
    source = FileSource(
        urls=[url], sha256=digest_of(body), piece_size=PIECE, piece_sha256=piece_hashes(body)
    )

    with pytest.raises(IntegrityError, match="piece 4"):
        FileDownload(source, part, options=fast_options()).run()

    assert len(data_requests(finished_requests(fault_server, "/m"))) <= 5


def test_corrupt_byte_on_every_fetch_without_pieces_raises_integrity_error(
    fault_server: FaultServer, part: Path
) -> None:
    body = random_body(1 * MIB, seed=31)
    url = fault_server.serve("/m", body, faults=[Corrupt((300_000,), after_requests=1)])

    with pytest.raises(IntegrityError, match="not the expected"):
        FileDownload(
            FileSource(urls=[url], sha256=digest_of(body)), part, options=fast_options()
        ).run()

    assert data_bytes_sent(fault_server, "/m") == 2 * len(body)


# --- the fault server: refusals and mirrors ------------------------------------------------------


@pytest.mark.parametrize("after_requests", [0, 1], ids=["probe", "ranged"])
def test_not_found_raises_network_error_404_without_retrying(
    fault_server: FaultServer, part: Path, after_requests: int
) -> None:
    body = random_body(256 * KIB, seed=32)
    url = fault_server.serve("/m", body, faults=[Status(404, after_requests=after_requests)])
    retries = Retries()

    with pytest.raises(NetworkError, match="404") as caught:
        FileDownload(
            FileSource(urls=[url], sha256=digest_of(body)),
            part,
            options=fast_options(retries=8, backoff_s=1.0, max_backoff_s=1.0),
            on_retry=retries,
        ).run()

    assert caught.value.status == 404
    assert retries.calls == []
    assert fault_server.count("/m") == after_requests + 1


@pytest.mark.parametrize(
    ("status", "advice"), [(401, "HF_TOKEN"), (403, "licence")], ids=["401", "403"]
)
@pytest.mark.parametrize("after_requests", [0, 1], ids=["probe", "ranged"])
def test_refused_access_raises_network_error_with_advice(
    fault_server: FaultServer, part: Path, status: int, advice: str, after_requests: int
) -> None:
    body = random_body(256 * KIB, seed=33)
    url = fault_server.serve("/m", body, faults=[Status(status, after_requests=after_requests)])
    retries = Retries()

    with pytest.raises(NetworkError, match=advice) as caught:
        FileDownload(
            FileSource(urls=[url], sha256=digest_of(body)),
            part,
            options=fast_options(),
            on_retry=retries,
        ).run()

    assert caught.value.status == status
    assert retries.calls == []


def test_mirror_is_used_when_the_first_url_is_not_found(
    fault_server: FaultServer, other_server: FaultServer, part: Path
) -> None:
    body = random_body(1 * MIB, seed=34)
    mirror = other_server.serve("/m", body)
    source = FileSource(urls=[fault_server.url("/missing"), mirror], sha256=digest_of(body))

    result = FileDownload(source, part, options=fast_options()).run()

    assert_verified(result, body, part)
    assert result.url == mirror


def test_mirror_is_used_when_the_first_url_resets_every_transfer(
    fault_server: FaultServer, other_server: FaultServer, part: Path
) -> None:
    body = random_body(1 * MIB, seed=35)
    first = fault_server.serve("/m", body, faults=[ResetAfter(0, after_requests=1)])
    mirror = other_server.serve("/m", body)
    source = FileSource(urls=[first, mirror], sha256=digest_of(body))

    result = FileDownload(source, part, options=fast_options(retries=2)).run()

    assert_verified(result, body, part)
    assert result.url == mirror
    assert len(data_requests(finished_requests(fault_server, "/m"))) == 3  # 1 + 2 retries


def test_mirror_that_fails_mid_file_hands_its_bytes_to_the_next_mirror(
    fault_server: FaultServer, other_server: FaultServer, part: Path
) -> None:
    body = random_body(1 * MIB, seed=36)
    first = fault_server.serve(
        "/m",
        body,
        faults=[ResetAfter(400 * KIB, after_requests=1, times=1), Status(404, after_requests=2)],
    )
    mirror = other_server.serve("/m", body)
    source = FileSource(urls=[first, mirror], sha256=digest_of(body))

    result = FileDownload(source, part, options=fast_options()).run()

    assert_verified(result, body, part)
    assert result.url == mirror
    assert data_bytes_sent(other_server, "/m") == len(body) - 400 * KIB


def test_a_mirror_serving_other_bytes_gives_way_to_the_next_url(
    fault_server: FaultServer, other_server: FaultServer, part: Path
) -> None:
    """The first URL serves bytes of the right size that fail the digest: the next URL is
    fetched from the start instead of the same bad mirror a second time."""
    body = random_body(1 * MIB, seed=38)
    first = fault_server.serve("/m", body, faults=[Corrupt((5, 700 * KIB), times=100)])
    mirror = other_server.serve("/m", body)
    source = FileSource(urls=[first, mirror], sha256=digest_of(body))

    result = FileDownload(source, part, options=fast_options()).run()

    assert_verified(result, body, part)
    assert result.url == mirror
    assert data_bytes_sent(fault_server, "/m") == len(body)  # once, not again
    assert data_bytes_sent(other_server, "/m") == len(body)


def test_a_server_without_ranges_that_refuses_the_transfer_gives_way_to_the_next_url(
    fault_server: FaultServer, other_server: FaultServer, part: Path
) -> None:
    """One stream (the first server ignores ranges): a 404 after the probe answered moves
    on to the mirror rather than failing the download."""
    body = random_body(512 * KIB, seed=39)
    first = fault_server.serve(
        "/m", body, faults=[IgnoreRange(times=100), Status(404, after_requests=1)]
    )
    mirror = other_server.serve("/m", body)
    source = FileSource(urls=[first, mirror], sha256=digest_of(body))

    result = FileDownload(source, part, options=fast_options()).run()

    assert_verified(result, body, part)
    assert result.url == mirror


def closed_port_url() -> str:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    return f"http://127.0.0.1:{port}/m"


def test_mirror_is_used_when_the_first_host_refuses_connections(
    other_server: FaultServer, part: Path
) -> None:
    body = random_body(256 * KIB, seed=37)
    mirror = other_server.serve("/m", body)
    source = FileSource(urls=[closed_port_url(), mirror], sha256=digest_of(body))

    result = FileDownload(source, part, options=fast_options(retries=2)).run()

    assert_verified(result, body, part)
    assert result.url == mirror


# --- pause, cancel and resume --------------------------------------------------------------------


def pause_after(
    executor: concurrent.futures.ThreadPoolExecutor, download: FileDownload, done_bytes: int
) -> None:
    running = run_in_background(executor, download)
    wait_until(lambda: download.progress().done_bytes >= done_bytes, f"{done_bytes} bytes")
    download.pause()
    with pytest.raises(DownloadPaused):
        running.result(GUARD_S)


@pytest.mark.parametrize("login", ["", "iris:s3cret@"], ids=["plain", "with-password"])
def test_pause_saves_state_and_a_new_download_fetches_only_the_rest(
    login: str,
    fault_server: FaultServer,
    part: Path,
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    size = 2 * MIB
    body = random_body(size, seed=40)
    url = fault_server.serve("/m", body, faults=[Trickle(rate_bytes_per_s=1 * MIB)])
    url = url.replace("://", f"://{login}", 1)  # the saved state keeps no password
    checkpoints = Checkpoints()
    source = FileSource(urls=[url], sha256=digest_of(body))
    first = FileDownload(
        source,
        part,
        options=fast_options(connections=2, checkpoint_interval_s=0.1),
        on_checkpoint=checkpoints,
    )

    running = run_in_background(executor, first)
    wait_until(lambda: first.progress().done_bytes >= 512 * KIB, "512 KiB to land")
    first.pause()
    with pytest.raises(DownloadPaused) as caught:
        running.result(GUARD_S)

    assert caught.value.reason == "paused"
    state = checkpoints.last()
    done = state.done.total
    assert 512 * KIB <= done < size
    assert done == first.progress().done_bytes
    assert state.validator == '"v1"'
    assert state.size == size

    fault_server.serve("/m", body)  # the same version, now at full speed
    first_run = len(finished_requests(fault_server, "/m"))
    result = FileDownload(source, part, options=fast_options(), state=state).run()

    assert_verified(result, body, part)
    assert result.fetched_bytes == size - done
    second_run = data_requests(finished_requests(fault_server, "/m")[first_run:])
    assert sum(r.body_bytes_sent for r in second_run) == size - done
    assert not any("s3cret" in saved for saved in checkpoints.saved)
    assert state.url == url.replace(":s3cret@", ":***@")


def test_resume_state_whose_part_file_is_gone_starts_over(
    fault_server: FaultServer, part: Path, executor: concurrent.futures.ThreadPoolExecutor
) -> None:
    size = 1 * MIB
    body = random_body(size, seed=39)
    url = fault_server.serve("/m", body, faults=[Trickle(rate_bytes_per_s=1 * MIB)])
    source = FileSource(urls=[url], sha256=digest_of(body))
    checkpoints = Checkpoints()
    first = FileDownload(source, part, options=fast_options(), on_checkpoint=checkpoints)
    pause_after(executor, first, 128 * KIB)
    state = checkpoints.last()
    assert state.done.total > 0
    part.unlink()

    fault_server.serve("/m", body)
    result = FileDownload(source, part, options=fast_options(), state=state).run()

    assert_verified(result, body, part)
    assert result.fetched_bytes == size


def test_cancel_raises_download_paused_with_reason_cancelled(
    fault_server: FaultServer, part: Path, executor: concurrent.futures.ThreadPoolExecutor
) -> None:
    body = random_body(1 * MIB, seed=41)
    url = fault_server.serve("/m", body, faults=[Trickle(rate_bytes_per_s=256 * KIB)])
    source = FileSource(urls=[url], sha256=digest_of(body))
    download = FileDownload(source, part, options=fast_options())

    running = run_in_background(executor, download)
    wait_until(lambda: download.progress().done_bytes > 0, "the first bytes")
    download.cancel()

    with pytest.raises(DownloadPaused) as caught:
        running.result(GUARD_S)
    assert caught.value.reason == "cancelled"


def test_pause_before_the_run_stops_at_once(fault_server: FaultServer, part: Path) -> None:
    body = random_body(64 * KIB, seed=42)
    url = fault_server.serve("/m", body)
    download = FileDownload(FileSource(urls=[url], sha256=digest_of(body)), part)
    download.pause()

    with pytest.raises(DownloadPaused):
        download.run()
    assert fault_server.count() == 0


@pytest.mark.parametrize(
    ("ranges", "after_requests"),
    [(True, 0), (True, 1), (False, 1)],
    ids=["probe", "ranged-request", "single-stream"],
)
def test_pause_during_a_retry_backoff_raises_download_paused(
    fault_server: FaultServer,
    part: Path,
    executor: concurrent.futures.ThreadPoolExecutor,
    ranges: bool,
    after_requests: int,
) -> None:
    body = random_body(256 * KIB, seed=43)
    url = fault_server.serve(
        "/m", body, ranges=ranges, faults=[Status(503, after_requests=after_requests)]
    )
    retries = Retries()
    options = fast_options(retries=3, backoff_s=60.0, max_backoff_s=60.0)
    download = FileDownload(
        FileSource(urls=[url], sha256=digest_of(body)), part, options=options, on_retry=retries
    )

    running = run_in_background(executor, download)
    assert retries.first.wait(GUARD_S)
    download.pause()

    with pytest.raises(DownloadPaused) as caught:
        running.result(GUARD_S)
    assert caught.value.reason == "paused"
    assert len(retries.calls) == 1


@pytest.mark.parametrize(
    ("resume_from", "verified"),
    [
        ("same-url", False),
        ("same-url", True),
        pytest.param("other-url", False),
        ("other-url", True),
    ],
    ids=[
        "same-url-unverified",
        "same-url-new-digest",
        "other-url-unverified",
        "other-url-new-digest",
    ],
)
def test_resume_after_the_remote_file_changed_gives_the_new_version_unmixed(
    nginx_factory: Callable[..., NginxServer],
    part: Path,
    executor: concurrent.futures.ThreadPoolExecutor,
    resume_from: str,
    verified: bool,
) -> None:
    """State saved for version 1; the server now has version 2 (same size, new ETag). The
    resume starts over, or (from another URL, with a digest) catches the mixture and starts
    over: the file is version 2 either way."""
    size = 2 * MIB
    nginx = nginx_factory(rate_bytes_per_s=2 * MIB)
    nginx.put_random("m.gguf", size, seed=44, mtime_s=1_700_000_000)
    old_etag = nginx.etag("m.gguf")
    url = nginx.url("m.gguf", "slow")
    checkpoints = Checkpoints()
    pause_after(
        executor,
        FileDownload(
            FileSource(urls=[url], allow_unverified=True),
            part,
            options=fast_options(connections=2),
            on_checkpoint=checkpoints,
        ),
        256 * KIB,
    )
    state = checkpoints.last()
    assert state.validator == old_etag
    assert state.done.total > 0

    _, new_hex = nginx.put_random("m.gguf", size, seed=45, mtime_s=1_700_000_100)
    assert nginx.etag("m.gguf") != old_etag
    source = FileSource(
        urls=[url if resume_from == "same-url" else nginx.url("m.gguf")],
        sha256=f"sha256:{new_hex}" if verified else None,
        allow_unverified=not verified,
    )
    result = FileDownload(source, part, options=fast_options(connections=2), state=state).run()

    assert_verified(result, nginx.path("m.gguf").read_bytes(), part)
    if resume_from == "same-url":
        assert result.fetched_bytes == size  # started over at once


def test_a_url_with_a_password_is_still_the_same_url_when_its_saved_state_has_none(
    nginx_factory: Callable[..., NginxServer],
    part: Path,
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    """The saved state keeps the URL without its password. Resumed from that state, the URL
    must count as the same one: the server's file changed (new ETag), so the download starts
    over; taken for another URL, the old bytes would be kept and mixed with the new."""
    size = 2 * MIB
    nginx = nginx_factory(rate_bytes_per_s=2 * MIB)
    nginx.put_random("m.gguf", size, seed=44, mtime_s=1_700_000_000)
    _, fixed_hex = nginx.put_random("fixed.gguf", size, seed=45)  # what the server will hold
    url = nginx.url("m.gguf", "slow").replace("://", "://iris:s3cret@", 1)
    source = FileSource(urls=[url], sha256=f"sha256:{fixed_hex}")
    checkpoints = Checkpoints()
    pause_after(
        executor,
        FileDownload(source, part, options=fast_options(connections=2), on_checkpoint=checkpoints),
        256 * KIB,
    )
    state = checkpoints.last()
    assert state.url == url.replace(":s3cret@", ":***@")

    nginx.put_random("m.gguf", size, seed=45, mtime_s=1_700_000_100)  # the server's fix
    result = FileDownload(source, part, options=fast_options(connections=2), state=state).run()

    assert_verified(result, nginx.path("m.gguf").read_bytes(), part)
    assert result.fetched_bytes == size  # started over at once, nothing mixed


def test_resume_through_a_new_redirect_url_after_the_file_changed_does_not_mix_versions(
    fault_server: FaultServer,
    other_server: FaultServer,
    part: Path,
    executor: concurrent.futures.ThreadPoolExecutor,
) -> None:
    """A hub redirects each request to a freshly signed CDN URL (as Hugging Face does); the
    file changed between the pause and the resume, and no digest is known."""
    size = 1 * MIB
    old, new = random_body(size, seed=46), random_body(size, seed=47)
    other_server.serve("/blob", old, faults=[Trickle(rate_bytes_per_s=1 * MIB)])
    hub = fault_server.serve(
        "/m",
        b"",
        faults=[
            Redirect(to=other_server.url("/blob?signature=1"), times=1),
            Redirect(to=other_server.url("/blob?signature=2"), after_requests=1),
        ],
    )
    source = FileSource(urls=[hub], allow_unverified=True)
    checkpoints = Checkpoints()
    pause_after(
        executor,
        FileDownload(source, part, options=fast_options(), on_checkpoint=checkpoints),
        256 * KIB,
    )
    state = checkpoints.last()
    assert state.done.total > 0

    other_server.replace("/blob", new, etag='"v2"')
    try:
        result = FileDownload(source, part, options=fast_options(), state=state).run()
    except (IntegrityError, NetworkError):
        return  # refusing is fine; keeping a mixture is not
    assert_verified(result, new, part)


# --- SIGKILL and a full disk ---------------------------------------------------------------------


def test_sigkill_mid_download_resumes_from_the_last_saved_state(
    nginx_factory: Callable[..., NginxServer], part: Path, tmp_path: Path
) -> None:
    size, connections, checkpoint_bytes = 2 * MIB, 2, 256 * KIB
    nginx = nginx_factory(rate_bytes_per_s=512 * KIB)
    _, hex_digest = nginx.put_random("m.gguf", size, seed=50)
    state_path = tmp_path / "state.json"
    child = subprocess.Popen(
        [
            sys.executable,
            str(CHILD),
            nginx.url("m.gguf", "slow") + "?client=child",
            str(part),
            str(state_path),
            f"--sha256=sha256:{hex_digest}",
            f"--connections={connections}",
            f"--checkpoint-bytes={checkpoint_bytes}",
            "--checkpoint-interval-s=0.1",
            f"--buffer-bytes={BUFFER}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        wait_until(
            lambda: saved_done_bytes(state_path) > 0 or child.poll() is not None,
            "a checkpoint from the child with some bytes done",
        )
        assert child.poll() is None, child.communicate()
        time.sleep(random.uniform(0.0, 0.8))
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        _, stderr = child.communicate()
    assert child.returncode == -signal.SIGKILL, stderr.decode(errors="replace")

    state = ResumeState.from_json(json.loads(state_path.read_text(encoding="utf-8")))
    done = state.done.total
    assert 0 < done < size

    source = FileSource(
        urls=[nginx.url("m.gguf") + "?client=resume"], sha256=f"sha256:{hex_digest}"
    )
    result = FileDownload(source, part, options=fast_options(connections=2), state=state).run()

    assert_verified(result, nginx.path("m.gguf").read_bytes(), part)
    assert result.fetched_bytes == size - done
    # What the child received beyond its last saved state is fetched again: at most one
    # checkpoint's worth, a buffer per connection, and what nginx had sent into the sockets
    # (nginx logs a cut request when it next tries to write to it: wait for that).
    child_sent = wait_for_child_bytes(nginx, "m.gguf", "client=child", at_least=done)
    refetched = child_sent - done
    assert refetched <= checkpoint_bytes + connections * (BUFFER + nginx.slow_chunk_bytes)


def saved_done_bytes(state_path: Path) -> int:
    """The bytes done in the state the child saved last (written atomically), 0 before any."""
    try:
        text = state_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return 0
    return ResumeState.from_json(json.loads(text)).done.total


def wait_for_child_bytes(nginx: NginxServer, name: str, args: str, *, at_least: int) -> int:
    """The body bytes nginx sent to requests with these query args, once at least `at_least`
    are logged and no new entry has come for a while."""

    def sent() -> tuple[int, int]:
        entries = [e for e in nginx.requests(name) if e.args == args and e.range != PROBE_RANGE]
        return len(entries), sum(e.body_bytes_sent for e in entries)

    wait_until(lambda: sent()[1] >= at_least, f"nginx to log {at_least} bytes sent to the child")
    last = sent()
    while True:
        time.sleep(0.3)
        now = sent()
        if now == last:
            return now[1]
        last = now


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs at tmp_path/full (needs root and the right to mount)."""
    with small_tmpfs(tmp_path / "full", "4m") as folder:
        yield folder


def test_full_disk_raises_insufficient_space_error_that_says_it_resumes(
    nginx: NginxServer, full_disk: Path
) -> None:
    url, hex_digest = nginx.put_random("m.gguf", 8 * MIB, seed=51)
    part = full_disk / "model.gguf.part"

    with pytest.raises(InsufficientSpaceError, match="resume") as caught:
        FileDownload(
            FileSource(urls=[url], sha256=f"sha256:{hex_digest}"), part, options=fast_options()
        ).run()

    assert isinstance(caught.value, OSError)
    assert caught.value.errno == errno.ENOSPC
    assert caught.value.bytes_needed == 8 * MIB
    assert part.exists()


def test_pause_wakes_a_connection_blocked_on_a_silent_server_at_once(
    fault_server: FaultServer, part: Path, executor: concurrent.futures.ThreadPoolExecutor
) -> None:
    body = random_body(1 * MIB, seed=77)
    url = fault_server.serve("/m", body, faults=[Stall(after_bytes=100 * KIB)])
    download = FileDownload(
        FileSource(urls=[url], sha256=digest_of(body)),
        part,
        options=fast_options(stall_timeout_s=600.0),  # a stop must not wait for this
    )
    running = executor.submit(download.run)
    assert fault_server.wait_for_requests(2, "/m")  # the probe, then the stalled range
    time.sleep(0.3)  # well into the stall
    download.pause()
    with pytest.raises(DownloadPaused):
        running.result(GUARD_S)  # GUARD_S is a hang guard, far below the 600 s stall timeout
