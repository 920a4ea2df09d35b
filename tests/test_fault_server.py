"""The fault-injecting test server (tests/servers/fault_server.py) does what each fault says, as
httpx sees it: ranges and validators, statuses, resets, truncation, corruption, stalls, pacing,
redirects, changing bodies, the request log and the connection counters."""

from __future__ import annotations

import asyncio
import email.utils
import random
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.servers import fault_server as fault_server_module
from tests.servers.fault_server import (
    ChangeBody,
    Corrupt,
    DelayHeaders,
    FaultServer,
    IgnoreRange,
    RandomReset,
    Redirect,
    ResetAfter,
    Stall,
    Status,
    Trickle,
    Truncate,
    WrongLength,
)

BODY = random.Random(7).randbytes(256 * 1024)
LAST_MODIFIED = email.utils.formatdate(1_700_000_000, usegmt=True)


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


def new_client(timeout: httpx.Timeout | float | None = 10) -> httpx.Client:
    return httpx.Client(timeout=timeout, verify=False)  # plain HTTP: skip loading CA certificates


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with new_client() as opened:
        yield opened


def stream(
    client: httpx.Client, url: str, headers: dict[str, str] | None = None
) -> tuple[httpx.Response, bytes, Exception | None]:
    """Reads a body chunk by chunk: the response, what arrived, and the error that ended it."""
    received = bytearray()
    with client.stream("GET", url, headers=headers) as response:
        try:
            for chunk in response.iter_bytes():
                received += chunk
        except httpx.TransportError as error:
            return response, bytes(received), error
    return response, bytes(received), None


# --- serving without faults ---------------------------------------------------------------------


def test_get_sends_the_body_with_validators_and_accept_ranges(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, etag='"abc"', last_modified=LAST_MODIFIED)
    response = client.get(url)
    assert response.status_code == 200
    assert response.content == BODY
    assert response.headers["content-length"] == str(len(BODY))
    assert response.headers["etag"] == '"abc"'
    assert response.headers["last-modified"] == LAST_MODIFIED
    assert response.headers["accept-ranges"] == "bytes"


def test_head_sends_the_headers_of_get_without_a_body(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY)
    response = client.head(url)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == str(len(BODY))
    assert response.headers["etag"] == '"v1"'
    assert client.get(url).content == BODY  # the connection is still in step after HEAD


def test_an_unknown_path_is_404(fault_server: FaultServer, client: httpx.Client) -> None:
    assert client.get(fault_server.url("/nothing")).status_code == 404


@pytest.fixture(scope="module")
def range_server() -> Iterator[tuple[FaultServer, httpx.Client, str]]:
    with FaultServer() as running, new_client() as opened:
        yield running, opened, running.serve("/r", BODY[:1000])


@settings(max_examples=60, deadline=None)
@given(first=st.integers(0, 1100), length=st.integers(0, 1100) | st.none())
def test_ranges_answer_206_with_the_slice_or_416(
    range_server: tuple[FaultServer, httpx.Client, str], first: int, length: int | None
) -> None:
    _, client, url = range_server
    body = BODY[:1000]
    wanted = f"bytes={first}-" if length is None else f"bytes={first}-{first + length}"
    response = client.get(url, headers={"Range": wanted})
    if first >= len(body):
        assert response.status_code == 416
        assert response.headers["content-range"] == "bytes */1000"
        return
    last = len(body) - 1 if length is None else min(first + length, len(body) - 1)
    assert response.status_code == 206
    assert response.content == body[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/1000"


@pytest.mark.parametrize(
    ("wanted", "status", "expected"),
    [
        ("bytes=-10", 206, slice(-10, None)),
        ("bytes=-999999999", 206, slice(None)),
        ("bytes=0-0", 206, slice(0, 1)),
        ("bytes=-0", 416, slice(0, 0)),
        ("bytes=5-3", 200, slice(None)),  # invalid: ignored, as RFC 9110 asks
        ("bytes=0-1,4-5", 200, slice(None)),  # several ranges: not supported, so ignored
        ("items=0-5", 200, slice(None)),
    ],
)
def test_suffix_and_odd_ranges(
    fault_server: FaultServer, client: httpx.Client, wanted: str, status: int, expected: slice
) -> None:
    url = fault_server.serve("/m", BODY)
    response = client.get(url, headers={"Range": wanted})
    assert response.status_code == status
    assert response.content == BODY[expected]


@pytest.mark.parametrize(
    ("if_range", "status"),
    [
        ('"v1"', 206),
        ('"v0"', 200),
        (LAST_MODIFIED, 206),
        (email.utils.formatdate(1_600_000_000, usegmt=True), 200),
    ],
)
def test_if_range_honours_the_range_only_for_the_current_version(
    fault_server: FaultServer, client: httpx.Client, if_range: str, status: int
) -> None:
    url = fault_server.serve("/m", BODY, etag='"v1"', last_modified=LAST_MODIFIED)
    response = client.get(url, headers={"Range": "bytes=100-", "If-Range": if_range})
    assert response.status_code == status
    assert response.content == (BODY[100:] if status == 206 else BODY)


def test_if_range_never_matches_a_weak_etag(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, etag='W/"v1"')
    response = client.get(url, headers={"Range": "bytes=100-", "If-Range": 'W/"v1"'})
    assert response.status_code == 200


def test_if_none_match_gets_304(fault_server: FaultServer, client: httpx.Client) -> None:
    url = fault_server.serve("/m", BODY)
    response = client.get(url, headers={"If-None-Match": '"v1"'})
    assert response.status_code == 304
    assert response.content == b""


def test_a_64_mib_body_is_served_whole_and_by_range(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    big = random.Random(1).randbytes(64 * 1024 * 1024)
    url = fault_server.serve("/big", big)
    assert client.get(url).content == big
    tail = client.get(url, headers={"Range": f"bytes={len(big) - 3_000_000}-"})
    assert tail.content == big[-3_000_000:]


# --- range support switched off -----------------------------------------------------------------


def test_a_path_without_ranges_answers_200_whole_and_no_accept_ranges(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, ranges=False)
    response = client.get(url, headers={"Range": "bytes=100-199"})
    assert response.status_code == 200
    assert response.content == BODY
    assert "accept-ranges" not in response.headers
    assert "content-range" not in response.headers


def test_ignore_range_applies_to_its_window_only(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, faults=[IgnoreRange(times=1)])
    first = client.get(url, headers={"Range": "bytes=100-199"})
    second = client.get(url, headers={"Range": "bytes=100-199"})
    assert (first.status_code, len(first.content)) == (200, len(BODY))
    assert "accept-ranges" not in first.headers
    assert (second.status_code, second.content) == (206, BODY[100:200])


# --- statuses and the request windows -----------------------------------------------------------


def test_503_carries_retry_after_then_the_body_follows(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, faults=[Status(503, retry_after=3, times=1)])
    first = client.get(url)
    assert first.status_code == 503
    assert first.headers["retry-after"] == "3"
    assert client.get(url).content == BODY


def test_429_carries_a_retry_after_date(fault_server: FaultServer, client: httpx.Client) -> None:
    url = fault_server.serve("/m", BODY, faults=[Status(429, retry_after=LAST_MODIFIED)])
    response = client.get(url)
    assert response.status_code == 429
    assert response.headers["retry-after"] == LAST_MODIFIED


@pytest.mark.parametrize("status", [401, 403, 404, 500])
def test_error_statuses_answer_every_get_and_head(
    fault_server: FaultServer, client: httpx.Client, status: int
) -> None:
    url = fault_server.serve(
        "/m", BODY, faults=[Status(status, body=b"no", headers=(("X-Why", "test"),))]
    )
    for _ in range(2):
        response = client.get(url)
        assert (response.status_code, response.content) == (status, b"no")
        assert response.headers["x-why"] == "test"
    assert client.head(url).status_code == status


def test_after_requests_and_times_pick_a_window_of_requests(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, faults=[Status(503, after_requests=1, times=2)])
    assert [client.get(url).status_code for _ in range(4)] == [200, 503, 503, 200]


def test_body_faults_count_only_gets_so_a_head_probe_does_not_use_them(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, faults=[ResetAfter(10, times=1)])
    assert client.head(url).status_code == 200
    _, received, error = stream(client, url)
    assert isinstance(error, httpx.ReadError)
    assert len(received) == 10


def test_methods_chooses_what_a_fault_counts(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, faults=[Status(503, times=1, methods=("GET",))])
    assert client.head(url).status_code == 200
    assert client.get(url).status_code == 503


def test_faults_are_checked_when_made() -> None:
    with pytest.raises(ValueError, match="times"):
        Status(500, times=0)
    with pytest.raises(ValueError, match="after_bytes"):
        ResetAfter(-1)
    with pytest.raises(ValueError, match="rate_bytes_per_s"):
        Trickle(0)
    with pytest.raises(ValueError, match="xor_mask"):
        Corrupt((1,), xor_mask=256)


def test_a_bug_in_the_server_fails_the_test_when_the_server_stops(
    monkeypatch: pytest.MonkeyPatch, client: httpx.Client
) -> None:
    def broken(wanted: str, size: int) -> tuple[int, int]:
        raise KeyError(wanted)

    monkeypatch.setattr(fault_server_module, "_parse_range", broken)
    fault_server = FaultServer().__enter__()
    url = fault_server.serve("/m", BODY)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(url, headers={"Range": "bytes=0-9"})
    with pytest.raises(AssertionError, match="fault server failed"):
        fault_server.__exit__(None, None, None)


# --- broken bodies ------------------------------------------------------------------------------


def test_reset_after_b_bytes_delivers_exactly_b_then_a_read_error(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, faults=[ResetAfter(100_000, times=1)])
    response, received, error = stream(client, url)
    assert response.status_code == 200
    assert isinstance(error, httpx.ReadError)
    assert received == BODY[:100_000]
    assert fault_server.requests()[0].body_bytes_sent == 100_000
    assert client.get(url).content == BODY


def test_reset_counts_bytes_from_the_start_of_the_range(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, faults=[ResetAfter(500)])
    response, received, error = stream(client, url, {"Range": "bytes=1000-"})
    assert response.status_code == 206
    assert isinstance(error, httpx.ReadError)
    assert received == BODY[1000:1500]


def test_reset_surfaces_as_read_error_in_async_httpx_too(fault_server: FaultServer) -> None:
    url = fault_server.serve("/m", BODY, faults=[ResetAfter(4096)])

    async def download() -> tuple[int, Exception | None]:
        received = 0
        async with (
            httpx.AsyncClient(timeout=10, verify=False) as client,
            client.stream("GET", url) as response,
        ):
            try:
                async for chunk in response.aiter_bytes():
                    received += len(chunk)
            except httpx.TransportError as error:
                return received, error
        return received, None

    received, error = asyncio.run(download())
    assert (received, type(error)) == (4096, httpx.ReadError)


def test_random_resets_repeat_with_the_seed_and_deliver_what_they_logged(
    client: httpx.Client,
) -> None:
    cuts: list[list[int]] = []
    for _ in range(2):
        with FaultServer() as fault_server:
            url = fault_server.serve("/m", BODY, faults=[RandomReset(seed=3, times=3)])
            for _ in range(3):
                _, received, error = stream(client, url)
                assert isinstance(error, httpx.ReadError)
                assert received == BODY[: len(received)]
            cuts.append([r.body_bytes_sent for r in fault_server.requests()])
    assert cuts[0] == cuts[1]
    assert all(cut < len(BODY) for cut in cuts[0])


def test_truncate_ends_the_body_early_with_a_clean_close(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, faults=[Truncate(5000)])
    _, received, error = stream(client, url)
    assert isinstance(error, httpx.RemoteProtocolError)
    assert "incomplete" in str(error) or "complete message body" in str(error)
    assert received == BODY[:5000]
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(url)


def test_a_larger_content_length_leaves_the_body_incomplete(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, faults=[WrongLength(100)])
    _, received, error = stream(client, url)
    assert isinstance(error, httpx.RemoteProtocolError)
    assert received == BODY


def test_a_smaller_content_length_makes_a_short_body_look_complete(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, faults=[WrongLength(-100, times=1)])
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(BODY) - 100)
    assert response.content == BODY[:-100]
    (first,) = fault_server.requests()
    # The server closes after the lie. Until that close arrives, the client may take the
    # connection back for its next request and find it gone, so the test waits for it.
    assert fault_server.wait_for_close(first.connection)
    assert client.get(url).content == BODY
    _, second = fault_server.requests()
    assert first.connection != second.connection


def test_corrupt_flips_the_given_resource_offsets_for_its_window(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    offsets = (0, 70_000, len(BODY) - 1)
    url = fault_server.serve("/m", BODY, faults=[Corrupt(offsets, times=1)])
    corrupted = client.get(url).content
    assert [i for i in range(len(BODY)) if corrupted[i] != BODY[i]] == list(offsets)
    assert all(corrupted[i] == BODY[i] ^ 0xFF for i in offsets)
    assert client.get(url).content == BODY


def test_corrupt_offsets_are_in_the_resource_not_the_response(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, faults=[Corrupt((1000,), xor_mask=0x01)])
    part = client.get(url, headers={"Range": "bytes=900-1099"}).content
    assert part[100] == BODY[1000] ^ 0x01
    assert part[:100] + part[101:] == BODY[900:1000] + BODY[1001:1100]


# --- time -------------------------------------------------------------------------------------


def test_a_stall_fires_the_client_read_timeout_after_the_bytes_before_it(
    fault_server: FaultServer,
) -> None:
    url = fault_server.serve("/m", BODY, faults=[Stall(after_bytes=3000)])
    with new_client(httpx.Timeout(10, read=0.2)) as client:
        _, received, error = stream(client, url)
    assert isinstance(error, httpx.ReadTimeout)
    assert received == BODY[:3000]


def test_a_timed_stall_goes_on_with_the_body(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, faults=[Stall(after_bytes=10, seconds=0.3)])
    started = time.monotonic()
    assert client.get(url).content == BODY
    assert time.monotonic() - started >= 0.3


def test_a_stalled_answer_does_not_hold_up_other_connections(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    stalled_url = fault_server.serve("/stalled", BODY, faults=[Stall(after_bytes=0, times=1)])
    url = fault_server.serve("/m", BODY)
    with new_client() as other, other.stream("GET", stalled_url) as response:
        assert response.status_code == 200
        assert client.get(url).content == BODY
        assert client.get(stalled_url, headers={"Range": "bytes=0-9"}).status_code == 206


def test_trickle_keeps_to_the_rate(fault_server: FaultServer, client: httpx.Client) -> None:
    url = fault_server.serve("/m", BODY[:40_000], faults=[Trickle(100_000)])
    started = time.monotonic()
    assert client.get(url).content == BODY[:40_000]
    # The first 5,000-byte slice goes at once, the other 35,000 bytes at 100,000 B/s.
    assert time.monotonic() - started >= 0.3


def test_delay_headers_holds_back_the_first_byte(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, faults=[DelayHeaders(0.3, times=1)])
    started = time.monotonic()
    with client.stream("GET", url) as response:
        assert response.status_code == 200
        assert time.monotonic() - started >= 0.3
    assert client.get(url).content == BODY
    assert [len(r.faults) for r in fault_server.requests()] == [1, 0]


def test_shutdown_is_prompt_with_stalled_and_trickling_answers() -> None:
    errors: list[Exception] = []
    fault_server = FaultServer().__enter__()
    urls = [
        fault_server.serve("/stall", BODY, faults=[Stall(after_bytes=100)]),
        fault_server.serve("/trickle", BODY, faults=[Trickle(10)]),
        fault_server.serve("/delay", BODY, faults=[DelayHeaders(3600)]),
    ]

    def download(url: str) -> None:
        with new_client(None) as client:
            try:
                client.get(url)
            except httpx.TransportError as error:
                errors.append(error)

    clients = [threading.Thread(target=download, args=(url,)) for url in urls]
    for thread in clients:
        thread.start()
    assert fault_server.wait_for_requests(3)
    stopping = threading.Thread(target=fault_server.__exit__, args=(None, None, None))
    stopping.start()
    stopping.join(timeout=60)  # only catches a hang; no timing is asserted
    assert not stopping.is_alive()
    for thread in clients:
        thread.join(timeout=60)
    assert len(errors) == 3
    assert fault_server.open_connections == 0


# --- redirects and changing bodies --------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307])
def test_redirect_lands_on_the_same_path_of_another_server(
    fault_server: FaultServer, client: httpx.Client, status: int
) -> None:
    with FaultServer() as other:
        other.serve("/m", BODY[:100])
        url = fault_server.serve("/m", BODY, faults=[Redirect(other, status=status)])
        first = client.get(url + "?x=1")
        assert first.status_code == status
        assert first.headers["location"] == other.url("/m?x=1")
        response = client.get(url, follow_redirects=True)
        assert response.url == httpx.URL(other.url("/m"))
        assert response.content == BODY[:100]
        assert other.count("/m") == 1


def test_redirect_to_a_given_url(fault_server: FaultServer, client: httpx.Client) -> None:
    target = fault_server.serve("/elsewhere", BODY[:10])
    url = fault_server.serve("/m", BODY, faults=[Redirect(target, times=1)])
    assert client.get(url, follow_redirects=True).content == BODY[:10]
    assert client.get(url).content == BODY


def test_change_body_serves_a_new_version_that_if_range_refuses(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    new = BODY[::-1]
    url = fault_server.serve("/m", BODY, faults=[ChangeBody(new, '"v2"', after_requests=1)])
    first = client.get(url, headers={"Range": "bytes=0-99"})
    assert (first.status_code, first.headers["etag"]) == (206, '"v1"')
    resumed = client.get(url, headers={"Range": "bytes=100-", "If-Range": '"v1"'})
    assert (resumed.status_code, resumed.headers["etag"]) == (200, '"v2"')
    assert resumed.content == new


def test_replace_lets_answers_under_way_finish_with_the_old_body(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    old = random.Random(2).randbytes(8 * 1024 * 1024)
    url = fault_server.serve("/m", old)
    with client.stream("GET", url) as response:
        chunks = response.iter_bytes()
        received = bytearray(next(chunks))
        fault_server.replace("/m", BODY, etag='"v2"')
        for chunk in chunks:
            received += chunk
    assert received == old
    after = client.get(url)
    assert (after.content, after.headers["etag"]) == (BODY, '"v2"')


# --- the log and the counters -------------------------------------------------------------------


def test_the_log_records_each_request_and_its_answer(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY, faults=[Truncate(7, after_requests=1)])
    client.head(url)
    client.get(url, headers={"Range": "bytes=10-19", "X-Test": "yes"})
    stream(client, url)
    head, ranged, truncated = fault_server.requests("/m")
    assert (head.method, head.status, head.body_bytes_sent, head.faults) == ("HEAD", 200, 0, ())
    assert (ranged.method, ranged.path, ranged.range, ranged.status) == (
        "GET",
        "/m",
        "bytes=10-19",
        206,
    )
    assert ranged.headers["x-test"] == "yes"
    assert ranged.body_bytes_sent == 10
    assert head.connection == ranged.connection  # keep-alive
    assert truncated.faults == (Truncate(7, after_requests=1),)
    assert truncated.body_bytes_sent == 7
    assert all(r.finished for r in fault_server.requests())
    assert fault_server.count() == fault_server.count("/m") == 3
    assert fault_server.count("/other") == 0


def test_peak_connections_counts_connections_open_at_once(fault_server: FaultServer) -> None:
    url = fault_server.serve("/m", BODY, faults=[Stall(after_bytes=0)])
    with (
        new_client() as a,
        new_client() as b,
        new_client() as c,
        a.stream("GET", url),
        b.stream("GET", url),
        c.stream("GET", url),
    ):
        assert fault_server.open_connections == 3
    assert fault_server.peak_connections == 3
    assert fault_server.peak_requests == 3


def test_one_client_reusing_its_connection_peaks_at_one(
    fault_server: FaultServer, client: httpx.Client
) -> None:
    url = fault_server.serve("/m", BODY)
    for _ in range(3):
        client.get(url)
    assert fault_server.peak_connections == 1
    assert len({r.connection for r in fault_server.requests()}) == 1


def test_clients_that_hang_up_mid_body_are_quiet(
    capfd: pytest.CaptureFixture[str], client: httpx.Client
) -> None:
    with FaultServer() as fault_server:
        url = fault_server.serve("/m", random.Random(3).randbytes(16 * 1024 * 1024))
        with client.stream("GET", url) as response:
            next(response.iter_bytes())
        client.close()
        fault_server.wait_for_requests(1)
    assert capfd.readouterr().err == ""
