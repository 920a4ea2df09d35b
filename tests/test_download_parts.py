"""The pieces the download engine is built from, each on its own: the range set of bytes on
disk, the rate parser and token bucket, the socket transport (against nginx, the fault server
and a raw socket server for heads no HTTP library would send), the probe, and the compiled
SHA-256, part file and hash_range."""

from __future__ import annotations

import array
import contextlib
import errno
import gc
import hashlib
import itertools
import random
import socket
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import final

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from tests.disks import small_tmpfs
from tests.servers.fault_server import (
    DelayHeaders,
    FaultServer,
    Redirect,
    ResetAfter,
    Stall,
    Status,
    Truncate,
    WrongLength,
)
from tests.servers.http_server import HTTPTestServer
from tests.servers.nginx import NginxServer

from iris_models import _core
from iris_models.download._probe import probe
from iris_models.download._ranges import RangeSet
from iris_models.download._rate import TokenBucket, parse_rate
from iris_models.download._transport import (
    MAX_HEADER_BYTES,
    ContentRange,
    RangeResponse,
    TransferError,
    open_range,
    parse_content_range,
)
from iris_models.errors import NetworkError

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB
BODY = random.Random(11).randbytes(256 * KIB)
LAST_MODIFIED = "Tue, 14 Nov 2023 22:13:20 GMT"


@pytest.fixture(autouse=True)
def _no_proxies(clean_network_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every request here goes straight to 127.0.0.1 unless a test sets a proxy itself."""
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10, verify=False) as opened:  # plain HTTP: no CA bundle to load
        yield opened


def closed_port() -> int:
    """A loopback port nothing listens on (connections to it are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def read_all(response: RangeResponse, buffer_bytes: int = 4096) -> bytes:
    """The whole body through readinto with a small buffer; checks each call's count."""
    view = memoryview(bytearray(buffer_bytes))
    received = bytearray()
    while True:
        count = response.readinto(view)
        assert 0 <= count <= buffer_bytes
        if count == 0:
            return bytes(received)
        received += view[:count]


def read_until_error(response: RangeResponse) -> tuple[bytes, TransferError]:
    """What arrived before the transfer broke, and how it broke."""
    view = memoryview(bytearray(4096))
    received = bytearray()
    while True:
        try:
            count = response.readinto(view)
        except TransferError as error:
            return bytes(received), error
        assert count > 0, "the body ended without the TransferError the fault should cause"
        received += view[:count]


@final
class RawServer:
    """A loopback TCP server that reads each request head and answers it with fixed bytes,
    then closes: for response heads no HTTP server library would send. Connections are
    answered one after another; `requests` holds the request heads it read."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}/raw"

    def __enter__(self) -> RawServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            with connection, contextlib.suppress(OSError):
                connection.settimeout(5)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = connection.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                self.requests.append(head)
                connection.sendall(self.answer)
                connection.shutdown(socket.SHUT_WR)


# --- RangeSet -------------------------------------------------------------------------------------

UNIVERSE = 200
offsets = st.integers(0, UNIVERSE)


def runs(covered: set[int]) -> list[tuple[int, int]]:
    """The maximal runs of consecutive integers in `covered`, as sorted [start, end) pairs."""
    result: list[tuple[int, int]] = []
    for value in sorted(covered):
        if result and result[-1][1] == value:
            result[-1] = (result[-1][0], value + 1)
        else:
            result.append((value, value + 1))
    return result


class RangeSetMachine(RuleBasedStateMachine):
    """RangeSet against a Python set of the covered offsets."""

    def __init__(self) -> None:
        super().__init__()
        self.ranges = RangeSet()
        self.model: set[int] = set()

    @rule(start=offsets, end=offsets)
    def add(self, start: int, end: int) -> None:
        self.ranges.add(start, end)
        self.model.update(range(start, end))

    @rule(start=offsets, end=offsets)
    def remove(self, start: int, end: int) -> None:
        self.ranges.remove(start, end)
        self.model.difference_update(range(start, end))

    @rule(start=offsets, end=offsets)
    def covers_is_true_exactly_when_every_offset_is_covered(self, start: int, end: int) -> None:
        expected = all(offset in self.model for offset in range(start, end))
        assert self.ranges.covers(start, end) == expected

    @rule(start=offsets)
    def contiguous_end_is_the_end_of_the_run_holding_start(self, start: int) -> None:
        expected = start
        while expected in self.model:
            expected += 1
        assert self.ranges.contiguous_end(start) == expected

    @rule(total=st.integers(0, UNIVERSE + 20))
    def gaps_are_the_uncovered_runs_below_total(self, total: int) -> None:
        assert self.ranges.gaps(total) == runs(set(range(total)) - self.model)

    @invariant()
    def iteration_yields_the_maximal_runs_sorted_disjoint_and_not_touching(self) -> None:
        listed = list(self.ranges)
        assert listed == runs(self.model)
        for start, end in listed:
            assert start < end
        for (_, end), (start, _) in itertools.pairwise(listed):
            assert end < start  # touching ranges would have been merged
        assert len(self.ranges) == len(listed)
        assert self.ranges.total == len(self.model)

    @invariant()
    def queries_are_exact_at_the_edges_of_every_run(self) -> None:
        # Random queries rarely land on an edge, where off-by-one mistakes live.
        for start, end in runs(self.model):
            assert self.ranges.covers(start, end)
            assert not self.ranges.covers(start, end + 1)
            assert not self.ranges.covers(start - 1, end)
            assert self.ranges.contiguous_end(start) == end
            assert self.ranges.contiguous_end(end - 1) == end
            assert self.ranges.contiguous_end(end) == end

    @invariant()
    def to_list_round_trips_through_the_constructor(self) -> None:
        saved = self.ranges.to_list()
        assert all(isinstance(pair, list) for pair in saved)
        assert RangeSet(saved) == self.ranges
        assert list(RangeSet(saved)) == list(self.ranges)


RangeSetMachine.TestCase.settings = settings(max_examples=50, stateful_step_count=30, deadline=None)
test_range_set_matches_a_set_of_offsets = RangeSetMachine.TestCase


@settings(deadline=None)
@given(st.lists(st.tuples(offsets, offsets), max_size=20))
def test_range_set_built_from_pairs_in_any_order_is_the_same(
    pairs: list[tuple[int, int]],
) -> None:
    forward = RangeSet(pairs)
    backward = RangeSet(reversed(pairs))
    model = {offset for start, end in pairs for offset in range(start, end)}
    assert forward == backward
    assert list(forward) == runs(model)


def test_adjacent_ranges_merge_and_removing_the_middle_splits_them() -> None:
    ranges = RangeSet([(10, 20)])
    ranges.add(20, 30)
    ranges.add(0, 10)
    assert list(ranges) == [(0, 30)]
    ranges.remove(12, 15)
    assert list(ranges) == [(0, 12), (15, 30)]
    assert ranges.gaps(40) == [(12, 15), (30, 40)]
    assert ranges.contiguous_end(3) == 12
    assert ranges.contiguous_end(12) == 12
    assert not ranges.covers(11, 13)
    assert ranges.total == 27


def test_empty_and_reversed_ranges_change_nothing() -> None:
    ranges = RangeSet([(5, 9)])
    ranges.add(7, 7)
    ranges.add(30, 20)
    ranges.remove(8, 6)
    ranges.remove(6, 6)
    assert list(ranges) == [(5, 9)]
    assert ranges.covers(100, 100)  # an empty range is covered


# --- parse_rate and TokenBucket -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500K", 500 * KIB),
        ("10M", 10 * MIB),
        ("1.5M", MIB + MIB // 2),
        ("2G", 2 * GIB),
        ("123", 123),
        ("10MiB/s", 10 * MIB),
        ("10MB", 10 * MIB),
        ("64k", 64 * KIB),
        (" 3 m ", 3 * MIB),
        ("0.5K", 512),
        ("1", 1),
    ],
)
def test_parse_rate_reads_curl_style_binary_units(text: str, expected: int) -> None:
    assert parse_rate(text) == expected


@pytest.mark.parametrize("text", ["", "fast", "10X", "-1M", "1e6", "M", "10 MB/h", "1,5M", "K10"])
def test_parse_rate_refuses_text_that_is_not_a_rate_with_examples(text: str) -> None:
    with pytest.raises(ValueError, match="not a rate") as raised:
        parse_rate(text)
    assert repr(text) in str(raised.value)
    assert "10M" in str(raised.value)  # says what a rate looks like


@pytest.mark.parametrize("text", ["0", "0K", "0.0M", "0.5"])
def test_parse_rate_refuses_a_rate_under_one_byte_per_second(text: str) -> None:
    with pytest.raises(ValueError, match="at least 1 byte per second"):
        parse_rate(text)


@settings(deadline=None)
@given(
    number=st.integers(1, 10**6),
    unit=st.sampled_from([("", 1), ("K", KIB), ("m", MIB), ("G", GIB)]),
    suffix=st.sampled_from(["", "B", "iB", "/s", "iB/s", "b/s"]),
)
def test_parse_rate_multiplies_the_number_by_the_unit(
    number: int, unit: tuple[str, int], suffix: str
) -> None:
    letter, factor = unit
    assume(letter or not suffix.startswith("i"))  # "10iB" is no unit anyone writes
    assert parse_rate(f"{number}{letter}{suffix}") == number * factor


@pytest.mark.parametrize("rate", [0, -1, -(10**6)])
def test_token_bucket_refuses_a_rate_that_is_not_positive(rate: int) -> None:
    with pytest.raises(ValueError, match="rate_bytes_per_s must be positive"):
        TokenBucket(rate)


def test_token_bucket_refuses_a_negative_burst() -> None:
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(1000, burst_bytes=-1)


@settings(deadline=None)
@given(
    rate=st.integers(1, 10**9),
    burst=st.integers(1, 10**7) | st.none(),
    wanted=st.integers(1, 10**8),
)
def test_a_full_bucket_grants_what_is_asked_up_to_the_burst(
    rate: int, burst: int | None, wanted: int
) -> None:
    bucket = TokenBucket(rate, burst_bytes=burst)
    assert bucket.burst_bytes == (burst if burst is not None else max(rate // 4, 16 * KIB))
    assert bucket.take(wanted) == min(wanted, bucket.burst_bytes)


def test_take_never_grants_more_than_asked_or_the_burst_and_keeps_to_the_rate() -> None:
    rate, burst, total = MIB, 16 * KIB, 256 * KIB
    rng = random.Random(3)
    started = time.monotonic()  # before the bucket: it starts full at creation
    bucket = TokenBucket(rate, burst_bytes=burst)
    granted = 0
    while granted < total:
        wanted = min(rng.randint(1, 40 * KIB), total - granted)
        got = bucket.take(wanted)
        assert 1 <= got <= min(wanted, burst)
        granted += got
    elapsed = time.monotonic() - started
    # At most `burst` up front plus `rate` per second since.
    assert elapsed >= (total - burst) / rate * 0.999


def test_threads_sharing_one_bucket_stay_under_its_rate_together() -> None:
    rate, burst, share, threads = MIB, 16 * KIB, 128 * KIB, 4
    started = time.monotonic()
    bucket = TokenBucket(rate, burst_bytes=burst)
    totals: list[int] = []
    oversized: list[int] = []

    def worker() -> None:
        got = 0
        while got < share:
            wanted = min(8 * KIB, share - got)
            granted = bucket.take(wanted)
            if not 1 <= granted <= wanted:
                oversized.append(granted)
            got += granted
        totals.append(got)

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=30)
    elapsed = time.monotonic() - started

    assert oversized == []
    assert totals == [share] * threads
    assert elapsed >= (threads * share - burst) / rate * 0.999


def test_cancelling_a_waiting_take_makes_it_return_zero() -> None:
    bucket = TokenBucket(1, burst_bytes=1)  # one byte a second: the next one is a second away
    assert bucket.take(1) == 1
    cancelled = threading.Event()
    results: list[int] = []
    taker = threading.Thread(target=lambda: results.append(bucket.take(1, cancelled=cancelled)))
    taker.start()
    time.sleep(0.05)  # let it start waiting for the token
    cancelled.set()
    taker.join(timeout=10)
    assert results == [0]  # a take that ignored the event would grant the byte a second later


def test_take_on_an_empty_bucket_with_the_event_already_set_returns_zero() -> None:
    bucket = TokenBucket(1, burst_bytes=100)
    assert bucket.take(100) == 100
    cancelled = threading.Event()
    cancelled.set()
    assert bucket.take(50, cancelled=cancelled) == 0


def test_give_back_restores_tokens_but_never_past_the_burst() -> None:
    cancelled = threading.Event()
    cancelled.set()  # a take that would have to wait returns 0 instead
    bucket = TokenBucket(1, burst_bytes=100)
    assert bucket.take(100) == 100
    bucket.give_back(40)
    assert bucket.take(100, cancelled=cancelled) == 40
    bucket.give_back(0)
    bucket.give_back(-5)
    assert bucket.take(100, cancelled=cancelled) == 0
    bucket.give_back(10_000)
    assert bucket.take(100, cancelled=cancelled) == 100
    assert bucket.take(100, cancelled=cancelled) == 0  # the extra 9,900 were not kept


# --- parse_content_range --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("bytes 0-99/1000", ContentRange(0, 99, 1000)),
        ("bytes 0-0/1", ContentRange(0, 0, 1)),
        ("bytes 5-9/*", ContentRange(5, 9, None)),
        ("  bytes 10-19/20 ", ContentRange(10, 19, 20)),
        ("bytes 9-5/100", None),  # end before start
        ("bytes */100", None),  # the unsatisfied-range form has no range
        ("bytes 0-99", None),
        ("bytes=0-99/100", None),
        ("items 0-99/100", None),
        ("bytes -1-5/10", None),
        ("bytes 0-99/", None),
        ("bytes 0-99/1000, bytes 0-99/1000", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_content_range_reads_valid_values_and_refuses_malformed_ones(
    value: str | None, expected: ContentRange | None
) -> None:
    assert parse_content_range(value) == expected


def test_parse_content_range_refuses_a_total_not_past_the_last_byte() -> None:
    assert parse_content_range("bytes 0-99/50") is None
    assert parse_content_range("bytes 0-99/99") is None


@settings(deadline=None)
@given(
    start=st.integers(0, 2**63),
    length=st.integers(1, 2**40),
    extra=st.integers(0, 2**40) | st.none(),
)
def test_parse_content_range_round_trips_what_http_writes(
    start: int, length: int, extra: int | None
) -> None:
    end = start + length - 1
    total = None if extra is None else end + 1 + extra
    value = f"bytes {start}-{end}/{'*' if total is None else total}"
    parsed = parse_content_range(value)
    assert parsed == ContentRange(start, end, total)
    assert parsed is not None
    assert parsed.length == length


@settings(deadline=None)
@given(st.text(max_size=40))
def test_parse_content_range_never_raises(value: str) -> None:
    parsed = parse_content_range(value)
    assert parsed is None or parsed.start <= parsed.end


# --- open_range against nginx ---------------------------------------------------------------------


def test_open_range_gets_206_with_exactly_the_bytes_asked_for(nginx: NginxServer) -> None:
    url = nginx.put("m.bin", BODY)
    response = open_range(url, 1000, 70_999)
    try:
        assert response.status == 206
        assert response.length == 70_000
        assert response.headers["content-length"] == "70000"
        assert response.headers["content-range"] == f"bytes 1000-70999/{len(BODY)}"
        assert read_all(response) == BODY[1000:71_000]
        assert response.readinto(memoryview(bytearray(10))) == 0  # stays at the end
    finally:
        response.close()
    assert nginx.requests("/files/m.bin", at_least=1)[-1].range == "bytes=1000-70999"


def test_open_range_with_no_end_reads_to_the_end_of_the_file(nginx: NginxServer) -> None:
    url = nginx.put("m.bin", BODY)
    response = open_range(url, 200_000, None)
    try:
        assert response.status == 206
        assert response.length == len(BODY) - 200_000
        assert read_all(response, buffer_bytes=64 * KIB) == BODY[200_000:]
    finally:
        response.close()


def test_if_range_with_the_current_etag_gets_the_range(nginx: NginxServer) -> None:
    url = nginx.put("m.bin", BODY)
    response = open_range(url, 10, 19, if_range=nginx.etag("m.bin"))
    try:
        assert response.status == 206
        assert read_all(response) == BODY[10:20]
    finally:
        response.close()


def test_if_range_with_another_etag_gets_the_whole_file_with_200(nginx: NginxServer) -> None:
    url = nginx.put("m.bin", BODY)
    response = open_range(url, 10, 19, if_range='"not-the-etag"')
    try:
        assert response.status == 200
        assert response.length == len(BODY)
        assert response.headers["etag"] == nginx.etag("m.bin")
        assert read_all(response, buffer_bytes=100 * KIB) == BODY
    finally:
        response.close()


# --- open_range against the fault server ----------------------------------------------------------


def test_open_range_sends_range_if_range_and_the_callers_headers(
    fault_server: FaultServer,
) -> None:
    url = fault_server.serve("/m", BODY, etag='"v1"')
    response = open_range(url, 10, 19, if_range='"v1"', headers={"X-Trace": "abc"})
    try:
        assert response.status == 206
        assert read_all(response) == BODY[10:20]
    finally:
        response.close()
    [request] = fault_server.requests("/m")
    assert request.range == "bytes=10-19"
    assert request.headers["if-range"] == '"v1"'
    assert request.headers["x-trace"] == "abc"
    assert request.headers["accept-encoding"] == "identity"
    assert request.headers["user-agent"].startswith("iris-models/")


@pytest.mark.parametrize("start", [0, 1000])
def test_a_reset_raises_transfer_error_counting_the_bytes_received(
    fault_server: FaultServer, start: int
) -> None:
    url = fault_server.serve("/m", BODY, faults=[ResetAfter(4096)])
    response = open_range(url, start, None)
    try:
        received, error = read_until_error(response)
    finally:
        response.close()
    assert received == BODY[start : start + 4096]
    assert error.received == 4096
    assert error.url == url
    assert "connection broke" in str(error)


def test_a_truncated_body_raises_transfer_error_saying_how_much_was_missing(
    fault_server: FaultServer,
) -> None:
    url = fault_server.serve("/m", BODY, faults=[Truncate(1000)])
    response = open_range(url, 0, None)
    try:
        assert response.length == len(BODY)
        received, error = read_until_error(response)
    finally:
        response.close()
    assert received == BODY[:1000]
    assert error.received == 1000
    assert f"{len(BODY) - 1000} bytes before the end" in str(error)


def test_a_content_length_larger_than_the_body_raises_transfer_error(
    fault_server: FaultServer,
) -> None:
    url = fault_server.serve("/m", BODY[:5000], faults=[WrongLength(100)])
    response = open_range(url, 0, None)
    try:
        assert response.length == 5100
        received, error = read_until_error(response)
    finally:
        response.close()
    assert received == BODY[:5000]
    assert error.received == 5000


def test_a_stalled_body_raises_transfer_error_after_the_stall_timeout(
    fault_server: FaultServer,
) -> None:
    url = fault_server.serve("/m", BODY, faults=[Stall(after_bytes=1000)])
    response = open_range(url, 0, None, stall_timeout_s=0.3)
    started = time.monotonic()
    try:
        received, error = read_until_error(response)
    finally:
        response.close()
    assert time.monotonic() - started >= 0.25
    assert received == BODY[:1000]
    assert error.received == 1000
    assert "stalled" in str(error)


def test_a_head_that_never_comes_raises_transfer_error_after_the_timeout(
    fault_server: FaultServer,
) -> None:
    url = fault_server.serve("/m", BODY, faults=[DelayHeaders(seconds=60)])
    with pytest.raises(TransferError, match="timed out"):
        open_range(url, 0, None, stall_timeout_s=0.3)


def test_an_error_status_comes_back_as_a_response_not_an_exception(
    fault_server: FaultServer,
) -> None:
    url = fault_server.serve("/m", BODY, faults=[Status(503, retry_after=7, body=b"busy")])
    response = open_range(url, 0, 99)
    try:
        assert response.status == 503
        assert response.headers["retry-after"] == "7"
        assert response.length == 4
        assert read_all(response) == b"busy"
    finally:
        response.close()


def test_a_refused_connection_raises_transfer_error() -> None:
    url = f"http://127.0.0.1:{closed_port()}/m"
    with pytest.raises(TransferError, match="could not connect") as raised:
        open_range(url, 0, None, connect_timeout_s=5)
    assert raised.value.url == url
    assert raised.value.received == 0


# --- open_range against heads no HTTP library sends -----------------------------------------------


def open_range_outcome(url: str) -> str:
    """What open_range does with `url`: ``"<exception class>: <message>"`` or ``"HTTP <status>"``.
    Nothing of the call outlives it: a socket that a failure left open is collected here, so
    its ResourceWarning does not land on whichever test runs at the next garbage collection."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            response = open_range(url, 0, None)
        except (ValueError, OSError) as error:  # TransferError is an OSError
            outcome = f"{type(error).__name__}: {error}"
        else:
            response.close()
            outcome = f"HTTP {response.status}"
        gc.collect()
    return outcome


@pytest.mark.parametrize(
    "status_line",
    [
        b"HTTP/1.1 OK",
        b"ICY 200 OK",
        b"HTTP/2 200",
        b"<html>",
        b"HTTP/1.1 \xb200 OK",
        b"HTTP/1.1 2000 OK",
    ],
)
def test_a_malformed_status_line_raises_transfer_error(status_line: bytes) -> None:
    with RawServer(status_line + b"\r\nContent-Length: 0\r\n\r\n") as raw:
        outcome = open_range_outcome(raw.url)
    assert outcome.startswith("TransferError: not an HTTP/1.x response"), outcome


@pytest.mark.parametrize(
    "header",
    [b"Content-Length 5", b"Content-Length : 5", b" folded: continuation", b": no-name"],
)
def test_a_malformed_header_line_raises_transfer_error(header: bytes) -> None:
    with (
        RawServer(b"HTTP/1.1 200 OK\r\n" + header + b"\r\n\r\nhello") as raw,
        pytest.raises(TransferError, match="malformed response header"),
    ):
        open_range(raw.url, 0, None)


def test_a_head_larger_than_the_limit_raises_transfer_error() -> None:
    filler = b"X-Filler: " + b"a" * 1000 + b"\r\n"
    head = b"HTTP/1.1 200 OK\r\n" + filler * (MAX_HEADER_BYTES // len(filler) + 20)
    with (
        RawServer(head + b"Content-Length: 0\r\n\r\n") as raw,
        pytest.raises(TransferError, match=f"over {MAX_HEADER_BYTES} bytes"),
    ):
        open_range(raw.url, 0, None)


@pytest.mark.parametrize("answer", [b"", b"HTTP/1.1 200 OK\r\nContent-"])
def test_a_server_that_closes_before_the_end_of_the_head_raises_transfer_error(
    answer: bytes,
) -> None:
    with (
        RawServer(answer) as raw,
        pytest.raises(TransferError, match="closed the connection without answering"),
    ):
        open_range(raw.url, 0, None)


def test_a_body_without_content_length_runs_to_the_close() -> None:
    with RawServer(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabcdef") as raw:
        response = open_range(raw.url, 0, None)
        try:
            assert response.length is None
            assert read_all(response, buffer_bytes=4) == b"abcdef"
        finally:
            response.close()


def test_bytes_past_the_content_length_are_not_part_of_the_body() -> None:
    with RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef") as raw:
        response = open_range(raw.url, 0, None)
        try:
            assert response.length == 3
            assert read_all(response) == b"abc"
        finally:
            response.close()


def test_header_names_are_lower_case_and_repeated_headers_are_joined() -> None:
    answer = b"HTTP/1.1 206 Partial\r\nX-Seen: 1\r\nx-seen:  2 \r\nContent-Length: 0\r\n\r\n"
    with RawServer(answer) as raw:
        response = open_range(raw.url, 0, 0)
        try:
            assert response.status == 206
            assert response.headers["x-seen"] == "1, 2"
        finally:
            response.close()
        assert b"Range: bytes=0-0\r\n" in raw.requests[0]
        assert b"Connection: close\r\n" in raw.requests[0]


def test_a_chunked_body_is_read_again_through_httpx_and_decoded() -> None:
    answer = (
        b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-9/10\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"
    )
    with RawServer(answer) as raw:
        response = open_range(raw.url, 0, 9)
        try:
            assert response.status == 206
            assert response.length is None  # not length-framed
            assert read_all(response, buffer_bytes=3) == b"helloworld"
        finally:
            response.close()
        assert len(raw.requests) == 2  # the socket path gave up on it, httpx asked again
        assert all(b"bytes=0-9" in request.lower() for request in raw.requests)


def test_a_content_length_that_is_not_a_number_raises_transfer_error() -> None:
    with RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: \xb2\r\n\r\nab") as raw:
        assert open_range_outcome(raw.url).startswith("TransferError: ")


def test_readinto_an_empty_buffer_returns_zero_and_leaves_the_body_readable(
    fault_server: FaultServer,
) -> None:
    # The body comes 0.2 s after the head, so none of it arrives with the head.
    url = fault_server.serve("/m", BODY[:100], faults=[Stall(after_bytes=0, seconds=0.2)])
    response = open_range(url, 0, None)
    try:
        assert response.readinto(memoryview(bytearray(0))) == 0
        assert read_all(response) == BODY[:100]
    finally:
        response.close()


# --- open_range and proxies -----------------------------------------------------------------------


def test_with_http_proxy_set_open_range_goes_through_the_proxy(
    monkeypatch: pytest.MonkeyPatch, server: HTTPTestServer
) -> None:
    target = f"http://127.0.0.1:{closed_port()}/m"  # unreachable but through the proxy
    # The test server answers the absolute-form request line a proxy gets.
    server.serve(target, BODY[:1000])
    monkeypatch.setenv("HTTP_PROXY", server.base_url)
    response = open_range(target, 100, 199)
    try:
        assert response.status == 206
        assert read_all(response) == BODY[100:200]
    finally:
        response.close()
    [request] = server.requests(target)
    assert request.headers["range"] == "bytes=100-199"


def test_a_proxy_that_refuses_connections_fails_with_transfer_error(
    monkeypatch: pytest.MonkeyPatch, fault_server: FaultServer
) -> None:
    url = fault_server.serve("/m", BODY)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(TransferError, match="could not connect"):
        open_range(url, 0, 99, connect_timeout_s=5)
    assert fault_server.count() == 0  # the server itself was never asked


@pytest.mark.parametrize("variable", ["NO_PROXY", "no_proxy"])
def test_no_proxy_for_the_host_bypasses_the_proxy(
    monkeypatch: pytest.MonkeyPatch, fault_server: FaultServer, variable: str
) -> None:
    url = fault_server.serve("/m", BODY)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv(variable, "localhost,127.0.0.1")
    response = open_range(url, 0, 99)
    try:
        assert response.status == 206
        assert read_all(response) == BODY[:100]
    finally:
        response.close()


# --- probe ----------------------------------------------------------------------------------------


def test_probe_reads_size_strong_etag_last_modified_and_range_support_from_nginx(
    nginx: NginxServer, client: httpx.Client
) -> None:
    url = nginx.put("m.bin", BODY)
    remote = probe(url, client=client)
    assert remote.url == url
    assert remote.size == len(BODY)
    assert remote.etag == nginx.etag("m.bin")
    assert remote.last_modified is not None
    assert remote.last_modified.endswith("GMT")
    assert remote.accepts_ranges is True
    assert remote.validator == remote.etag
    assert remote.linked_sha256 is None
    assert remote.linked_size is None
    assert nginx.requests("/files/m.bin", at_least=1)[-1].range == "bytes=0-0"


def test_probe_of_a_server_ignoring_ranges_takes_the_size_from_content_length(
    nginx: NginxServer, client: httpx.Client
) -> None:
    nginx.put("m.bin", BODY)
    url = nginx.url("m.bin", "nocache")
    remote = probe(url, client=client)
    assert remote.accepts_ranges is False
    assert remote.size == len(BODY)
    assert remote.etag is None  # etag off there
    assert remote.validator == remote.last_modified


def test_probe_of_an_empty_file_on_nginx_gives_size_zero(
    nginx: NginxServer, client: httpx.Client
) -> None:
    url = nginx.put("empty.bin", b"")
    assert probe(url, client=client).size == 0


def test_probe_of_an_empty_file_answered_416_gives_size_zero_with_ranges(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/empty", b"")
    remote = probe(url, client=client)
    assert remote.size == 0
    assert remote.accepts_ranges is True


def test_probe_follows_redirects_and_reports_the_final_url(client: httpx.Client) -> None:
    with FaultServer() as hub, FaultServer() as cdn:
        cdn.serve("/m", BODY, etag='"cdn"')
        url = hub.serve("/m", b"", faults=[Redirect(cdn)])
        remote = probe(url, client=client)
        assert remote.url == cdn.url("/m")
        assert remote.size == len(BODY)
        assert remote.etag == '"cdn"'
        assert remote.accepts_ranges is True
        assert cdn.requests("/m")[0].range == "bytes=0-0"


def test_probe_takes_linked_etag_and_size_from_the_first_response_of_a_redirect_chain(
    server: HTTPTestServer, client: httpx.Client
) -> None:
    digest = hashlib.sha256(BODY).hexdigest()
    final = server.serve("/cdn/m", BODY, etag='"cdn"')
    # A second hop without the headers must not erase what the first one said.
    server.serve("/hop", status=302, headers={"Location": final})
    url = server.serve(
        "/resolve/m",
        status=302,
        headers={
            "Location": server.url("/hop"),
            "X-Linked-Etag": f'"{digest}"',
            "X-Linked-Size": str(len(BODY)),
        },
    )
    remote = probe(url, client=client)
    assert remote.url == final
    assert remote.linked_sha256 == f"sha256:{digest}"
    assert remote.linked_size == len(BODY)
    assert remote.size == len(BODY)
    assert remote.etag == '"cdn"'


def test_probe_ignores_a_linked_etag_that_is_not_a_sha256(
    server: HTTPTestServer, client: httpx.Client
) -> None:
    final = server.serve("/cdn/m", BODY)
    url = server.serve(
        "/resolve/m",
        status=302,
        headers={"Location": final, "X-Linked-Etag": '"' + "a" * 40 + '"', "X-Linked-Size": "x"},
    )
    remote = probe(url, client=client)
    assert remote.linked_sha256 is None
    assert remote.linked_size is None


def test_probe_ignores_a_linked_size_that_is_not_a_number(
    server: HTTPTestServer, client: httpx.Client
) -> None:
    final = server.serve("/cdn/m", BODY)
    url = server.serve(
        "/resolve/m", status=302, headers={"Location": final, "X-Linked-Size": "\u00b2"}
    )
    remote = probe(url, client=client)
    assert remote.linked_size is None
    assert remote.size == len(BODY)


def test_probe_drops_a_weak_etag_and_validates_with_last_modified(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, etag='W/"x"', last_modified=LAST_MODIFIED)
    remote = probe(url, client=client)
    assert remote.etag is None
    assert remote.last_modified == LAST_MODIFIED
    assert remote.validator == LAST_MODIFIED
    assert remote.size == len(BODY)


@pytest.mark.parametrize(
    ("status", "advice"),
    [(404, "check the URL"), (401, "HF_TOKEN"), (403, "licence"), (500, "try again later")],
)
def test_probe_raises_network_error_with_the_status_and_what_to_do(
    fault_server: FaultServer, client: httpx.Client, status: int, advice: str
) -> None:
    url = fault_server.serve("/m", BODY, faults=[Status(status)])
    with pytest.raises(NetworkError, match=advice) as raised:
        probe(url, client=client)
    assert raised.value.status == status
    assert raised.value.url == url
    assert f"HTTP {status}" in str(raised.value)
    assert not isinstance(raised.value, TransferError)  # not a transient failure


def test_probe_refuses_a_416_for_a_non_empty_file(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve(
        "/m", BODY, faults=[Status(416, headers=(("Content-Range", "bytes */100"),))]
    )
    with pytest.raises(NetworkError, match="416") as raised:
        probe(url, client=client)
    assert raised.value.status == 416


def test_probe_refuses_a_206_for_another_range(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve(
        "/m", BODY, faults=[Status(206, headers=(("Content-Range", "bytes 5-5/100"),))]
    )
    with pytest.raises(NetworkError, match="malformed Content-Range"):
        probe(url, client=client)


def test_probe_of_a_closed_port_raises_transfer_error(client: httpx.Client) -> None:
    with pytest.raises(TransferError, match="could not connect"):
        probe(f"http://127.0.0.1:{closed_port()}/m", client=client)


def test_probe_of_a_redirect_loop_is_a_network_error_not_retried(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/loop", b"", faults=[Redirect(fault_server.url("/loop"))])
    with pytest.raises(NetworkError, match="too many redirects") as caught:
        probe(url, client=client)
    assert not isinstance(caught.value, TransferError)  # a retry would loop just the same


# --- _core.Sha256 ---------------------------------------------------------------------------------


def as_buffer(kind: int, data: bytes) -> bytes | bytearray | memoryview:
    return (bytes, bytearray, memoryview)[kind](data)


@settings(deadline=None)
@given(
    data=st.binary(max_size=600),
    cuts=st.lists(st.integers(0, 600), max_size=8),
    kinds=st.lists(st.integers(0, 2), min_size=9, max_size=9),
    backend=st.sampled_from(_core.sha256_backends()),
)
def test_sha256_of_pieces_equals_hashlib_of_the_whole(
    data: bytes, cuts: list[int], kinds: list[int], backend: str
) -> None:
    hasher = _core.Sha256(backend)
    bounds = [0, *sorted(min(cut, len(data)) for cut in cuts), len(data)]
    for kind, (start, end) in zip(kinds, itertools.pairwise(bounds), strict=False):
        hasher.update(as_buffer(kind, data[start:end]))
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()
    assert hasher.bytes_hashed == len(data)


def test_sha256_hashes_the_bytes_of_a_typed_buffer() -> None:
    numbers = array.array("I", range(1000))
    hasher = _core.Sha256()
    hasher.update(numbers)
    assert hasher.hexdigest() == hashlib.sha256(numbers.tobytes()).hexdigest()
    assert hasher.bytes_hashed == 4000


def test_sha256_refuses_a_strided_buffer() -> None:
    with pytest.raises(ValueError, match="contiguous"):
        _core.Sha256().update(memoryview(b"abcdef")[::2])


def test_sha256_hexdigest_does_not_end_the_hash() -> None:
    hasher = _core.Sha256()
    hasher.update(b"abc")
    assert hasher.hexdigest() == hashlib.sha256(b"abc").hexdigest()
    hasher.update(b"def")
    assert hasher.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()


@settings(deadline=None)
@given(data=st.binary(max_size=400), cut=st.integers(0, 400))
def test_sha256_saved_and_restored_continues_like_the_original(data: bytes, cut: int) -> None:
    head, tail = data[:cut], data[cut:]
    original = _core.Sha256()
    original.update(head)
    saved = original.save()
    restored = _core.Sha256.restore(saved)
    assert restored.bytes_hashed == len(head)
    assert restored.save() == saved
    original.update(tail)
    restored.update(tail)
    assert restored.hexdigest() == original.hexdigest() == hashlib.sha256(data).hexdigest()


def saved_after(data: bytes) -> bytes:
    hasher = _core.Sha256()
    hasher.update(data)
    return hasher.save()


def test_sha256_restore_refuses_the_wrong_length_or_tag() -> None:
    saved = saved_after(b"abc")
    for broken in (saved[:-1], saved + b"\0", b"", b"X" + saved[1:]):
        with pytest.raises(ValueError, match="not a saved SHA-256 state"):
            _core.Sha256.restore(broken)


@settings(deadline=None)
@given(data=st.binary(max_size=200), draw=st.data(), value=st.integers(1, 255))
def test_sha256_restore_refuses_bytes_past_the_pending_block(
    data: bytes, draw: st.DataObject, value: int
) -> None:
    pending = len(data) % 64  # the bytes not yet compressed, kept at the end of the state
    at = draw.draw(st.integers(pending, 63), label="at")
    saved = bytearray(saved_after(data))
    saved[4 + 32 + 8 + at] = value  # the pending block follows tag, state and byte count
    with pytest.raises(ValueError, match="past the pending block"):
        _core.Sha256.restore(bytes(saved))


def test_sha256_copy_is_independent_of_the_original() -> None:
    original = _core.Sha256()
    original.update(b"head")
    copy = original.copy()
    copy.update(b"-copy")
    original.update(b"-original")
    assert copy.hexdigest() == hashlib.sha256(b"head-copy").hexdigest()
    assert original.hexdigest() == hashlib.sha256(b"head-original").hexdigest()


# --- _core.PartFile and hash_range ----------------------------------------------------------------


@pytest.fixture
def part(tmp_path: Path) -> Iterator[_core.PartFile]:
    opened = _core.PartFile(str(tmp_path / "m.part"))
    yield opened
    opened.close()


@settings(
    deadline=None, max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    writes=st.lists(
        st.tuples(st.integers(0, 5000), st.binary(min_size=1, max_size=700)), max_size=12
    ),
    reads=st.lists(st.tuples(st.integers(0, 6000), st.integers(0, 2000)), max_size=6),
)
def test_part_file_reads_back_writes_made_at_any_offset_in_any_order(
    part: _core.PartFile, writes: list[tuple[int, bytes]], reads: list[tuple[int, int]]
) -> None:
    part.truncate(0)  # the file is shared by every example
    model = bytearray()
    for offset, data in writes:
        part.write_at(offset, data if offset % 2 else memoryview(data))
        if len(model) < offset + len(data):
            model.extend(bytes(offset + len(data) - len(model)))  # a hole reads as zeros
        model[offset : offset + len(data)] = data
    assert part.size == len(model)
    assert part.read_at(0, len(model) + 10) == bytes(model)
    for offset, size in reads:
        assert part.read_at(offset, size) == bytes(model[offset : offset + size])


def test_part_file_reserve_grows_the_file_and_never_shrinks_it(part: _core.PartFile) -> None:
    part.write_at(0, b"x" * 100)
    part.reserve(50)
    assert part.size == 100
    part.reserve(MIB)
    assert part.size == MIB
    assert part.read_at(0, 101) == b"x" * 100 + b"\0"
    assert Path(part.path).stat().st_size == MIB
    part.truncate(10)
    assert part.size == 10
    assert part.read_at(0, 100) == b"x" * 10
    part.sync()


def test_part_file_reopened_keeps_its_bytes(tmp_path: Path) -> None:
    path = str(tmp_path / "m.part")
    first = _core.PartFile(path)
    first.write_at(3, b"abc")
    first.sync()
    first.close()
    again = _core.PartFile(path)
    try:
        assert again.path == path
        assert again.read_at(0, 10) == b"\0\0\0abc"
    finally:
        again.close()


def test_part_file_refuses_every_operation_after_close(part: _core.PartFile) -> None:
    part.close()
    part.close()  # closing twice is harmless
    assert not part.is_open
    operations: list[Callable[[], object]] = [
        lambda: part.reserve(10),
        lambda: part.write_at(0, b"a"),
        lambda: part.read_at(0, 1),
        lambda: part.truncate(0),
        lambda: part.sync(),
        lambda: part.size,
        lambda: _core.hash_range(part, [_core.Sha256()], 0, 1),
    ]
    for operation in operations:
        with pytest.raises(OSError, match="closed") as raised:
            operation()
        assert raised.value.errno == errno.EBADF
        assert raised.value.filename == part.path


def test_part_file_on_a_directory_raises_os_error(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="part file") as raised:
        _core.PartFile(str(tmp_path))
    assert raised.value.errno in (errno.EISDIR, errno.EINVAL)
    assert raised.value.filename == str(tmp_path)


def test_part_file_in_a_missing_folder_raises_file_not_found(tmp_path: Path) -> None:
    path = str(tmp_path / "missing" / "m.part")
    with pytest.raises(FileNotFoundError) as raised:
        _core.PartFile(path)
    assert raised.value.filename == path


def test_part_file_write_refuses_a_strided_buffer(part: _core.PartFile) -> None:
    with pytest.raises(ValueError, match="contiguous"):
        part.write_at(0, memoryview(b"abcdef")[::2])


@pytest.mark.parametrize(("offset", "length"), [(0, 3 * MIB + 17), (MIB - 5, MIB + 10), (7, 0)])
def test_hash_range_feeds_every_hasher_the_same_bytes(
    part: _core.PartFile, offset: int, length: int
) -> None:
    data = random.Random(5).randbytes(3 * MIB + 17)  # over the 1 MiB read block
    part.write_at(0, data)
    whole, piece = _core.Sha256(), _core.Sha256()
    whole.update(b"earlier bytes")
    _core.hash_range(part, [whole, piece], offset, length)
    wanted = data[offset : offset + length]
    assert piece.hexdigest() == hashlib.sha256(wanted).hexdigest()
    assert whole.hexdigest() == hashlib.sha256(b"earlier bytes" + wanted).hexdigest()
    assert piece.bytes_hashed == length


def test_hash_range_past_the_end_of_the_file_raises_index_error(part: _core.PartFile) -> None:
    part.write_at(0, b"a" * 1000)
    with pytest.raises(IndexError, match="ends before the range"):
        _core.hash_range(part, [_core.Sha256()], 500, 501)
    with pytest.raises(IndexError, match="ends before the range"):
        _core.hash_range(part, [_core.Sha256()], 2000, 1)


# --- a full disk ----------------------------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs, where the disk fills up on purpose; skips where mounting is not allowed."""
    with small_tmpfs(tmp_path / "tmpfs", "1m") as mount_point:
        yield mount_point


def test_reserving_more_than_the_disk_has_raises_enospc(full_disk: Path) -> None:
    part = _core.PartFile(str(full_disk / "m.part"))
    try:
        with pytest.raises(OSError, match="reserve") as raised:
            part.reserve(10 * MIB)
        assert raised.value.errno == errno.ENOSPC
        assert raised.value.filename == part.path
    finally:
        part.close()


def test_writing_past_the_space_on_disk_raises_enospc(full_disk: Path) -> None:
    part = _core.PartFile(str(full_disk / "m.part"))
    try:
        with pytest.raises(OSError, match="write") as raised:
            part.write_at(0, bytes(2 * MIB))
        assert raised.value.errno == errno.ENOSPC
    finally:
        part.close()
