"""The nginx fixture behaves as the download tests assume: real ranges, validators, rate limits,
a location that ignores ranges, and an access log that shows what was asked for."""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable

import httpx
import pytest
from tests.servers import nginx as nginx_module
from tests.servers.nginx import NginxServer

KIB = 1024


def test_full_get_returns_the_bytes_with_a_strong_etag_and_accept_ranges(
    nginx: NginxServer,
) -> None:
    url, digest = nginx.put_random("models/m.gguf", 300 * KIB, seed=7)

    response = httpx.get(url)

    assert response.status_code == 200
    assert hashlib.sha256(response.content).hexdigest() == digest
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["etag"] == nginx.etag("models/m.gguf")
    assert not response.headers["etag"].startswith("W/")
    assert response.headers["content-length"] == str(300 * KIB)
    assert "last-modified" in response.headers


def test_put_random_is_the_same_for_the_same_seed_and_differs_for_another(
    nginx: NginxServer,
) -> None:
    _, first = nginx.put_random("a", 10 * KIB, seed=1)
    _, again = nginx.put_random("b", 10 * KIB, seed=1)
    _, other = nginx.put_random("c", 10 * KIB, seed=2)

    assert first == again != other
    assert nginx.path("a").read_bytes() == nginx.path("b").read_bytes()


def test_range_request_gets_206_with_content_range(nginx: NginxServer) -> None:
    data = bytes(range(256)) * 40
    url = nginx.put("r.bin", data)

    response = httpx.get(url, headers={"Range": "bytes=100-1099"})

    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes 100-1099/{len(data)}"
    assert response.content == data[100:1100]
    # nginx sends Accept-Ranges only on 200; a 206 alone shows that ranges work.
    assert "accept-ranges" not in response.headers


def test_open_and_suffix_ranges_and_a_range_past_the_end(nginx: NginxServer) -> None:
    data = bytes(range(256)) * 4
    url = nginx.put("r.bin", data)

    tail = httpx.get(url, headers={"Range": "bytes=1000-"})
    suffix = httpx.get(url, headers={"Range": "bytes=-10"})
    past_end = httpx.get(url, headers={"Range": f"bytes={len(data)}-"})

    assert (tail.status_code, tail.content) == (206, data[1000:])
    assert (suffix.status_code, suffix.content) == (206, data[-10:])
    assert past_end.status_code == 416
    assert past_end.headers["content-range"] == f"bytes */{len(data)}"


def test_if_range_with_the_current_etag_gets_206_and_a_stale_one_gets_200_full(
    nginx: NginxServer,
) -> None:
    data = b"0123456789" * 100
    url = nginx.put("v.bin", data)
    etag = nginx.etag("v.bin")

    current = httpx.get(url, headers={"Range": "bytes=10-19", "If-Range": etag})
    stale = httpx.get(url, headers={"Range": "bytes=10-19", "If-Range": '"0-0"'})
    weak = httpx.get(url, headers={"Range": "bytes=10-19", "If-Range": f"W/{etag}"})

    assert (current.status_code, current.content) == (206, data[10:20])
    assert (stale.status_code, stale.content) == (200, data)
    assert (weak.status_code, weak.content) == (200, data)  # If-Range compares strongly


def test_replacing_a_file_with_a_new_mtime_changes_its_etag(nginx: NginxServer) -> None:
    url = nginx.put("v.bin", b"a" * 100, mtime_s=1_700_000_000)
    old_etag = httpx.get(url).headers["etag"]

    nginx.put("v.bin", b"b" * 100, mtime_s=1_700_000_001)
    response = httpx.get(url, headers={"Range": "bytes=0-9", "If-Range": old_etag})

    assert response.headers["etag"] == nginx.etag("v.bin") != old_etag
    assert (response.status_code, response.content) == (200, b"b" * 100)


def test_nocache_answers_200_with_the_whole_body_to_a_range_request(nginx: NginxServer) -> None:
    data = b"x" * 5000 + b"y" * 5000
    nginx.put("n.bin", data)

    response = httpx.get(nginx.url("n.bin", "nocache"), headers={"Range": "bytes=5000-5999"})

    assert response.status_code == 200
    assert response.content == data
    assert response.headers["accept-ranges"] == "none"
    assert "etag" not in response.headers
    assert "content-range" not in response.headers


def test_slow_holds_one_connection_to_the_constructed_rate(
    nginx_factory: Callable[..., NginxServer],
) -> None:
    rate, size = 256 * KIB, 512 * KIB
    server = nginx_factory(rate_bytes_per_s=rate)
    _, digest = server.put_random("s.bin", size, seed=3)

    started = time.monotonic()
    response = httpx.get(server.url("s.bin", "slow"), timeout=30)
    elapsed_s = time.monotonic() - started

    assert hashlib.sha256(response.content).hexdigest() == digest
    # Only a lower bound: a rate limit can make a busy machine slower, never faster.
    assert elapsed_s >= 0.9 * (size - server.slow_chunk_bytes) / rate


def test_slow_rate_can_be_set_per_url_and_ranges_still_work(
    nginx_factory: Callable[..., NginxServer],
) -> None:
    server = nginx_factory(rate_bytes_per_s=256 * KIB)
    rate = 128 * KIB
    data = bytes(range(256)) * 1024  # 256 KiB
    server.put("s.bin", data)
    url = server.url("s.bin", "slow", rate_bytes_per_s=rate)

    started = time.monotonic()
    response = httpx.get(url, headers={"Range": f"bytes=0-{len(data) - 2}"}, timeout=30)
    elapsed_s = time.monotonic() - started

    assert response.status_code == 206
    assert response.content == data[:-1]
    assert elapsed_s >= 0.9 * (len(data) - 1 - server.slow_chunk_bytes) / rate


def test_access_log_records_range_if_range_status_and_bytes(nginx: NginxServer) -> None:
    url = nginx.put("log.bin", b"z" * 1000)
    etag = nginx.etag("log.bin")

    with httpx.Client() as client:
        client.get(url)
        client.get(url, headers={"Range": "bytes=0-99", "If-Range": etag})
        client.get(nginx.url("log.bin", "nocache"), headers={"Range": "bytes=0-99"})
    entries = nginx.requests("log.bin", at_least=3)

    assert [(e.uri, e.status, e.range, e.body_bytes_sent) for e in entries] == [
        ("/files/log.bin", 200, None, 1000),
        ("/files/log.bin", 206, "bytes=0-99", 100),
        ("/nocache/log.bin", 200, "bytes=0-99", 1000),
    ]
    assert entries[1].if_range == etag
    assert entries[1].request == "GET /files/log.bin HTTP/1.1"
    assert all(e.bytes_sent > e.body_bytes_sent for e in entries)  # headers counted too
    assert len({e.connection for e in entries}) == 1  # one keep-alive connection
    assert nginx.requests("/nocache/log.bin") == entries[2:]


def test_a_missing_file_is_404(nginx: NginxServer) -> None:
    assert httpx.get(nginx.url("absent.gguf")).status_code == 404


def test_names_outside_the_document_root_are_refused(nginx: NginxServer) -> None:
    with pytest.raises(ValueError, match="under the document root"):
        nginx.put("../escape", b"")


def test_start_moves_to_another_port_when_the_chosen_one_is_taken(
    nginx_factory: Callable[..., NginxServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_free_port = nginx_module._free_port
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        taken_port = taken.getsockname()[1]
        ports = iter([taken_port])
        monkeypatch.setattr(nginx_module, "_free_port", lambda: next(ports, 0) or real_free_port())

        server = nginx_factory()

        assert server.port not in (0, taken_port)
        assert httpx.get(server.put("p.bin", b"ok")).content == b"ok"


def test_stop_ends_nginx_and_frees_the_port(nginx: NginxServer) -> None:
    port = nginx.port
    nginx.stop()

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/files/x")
