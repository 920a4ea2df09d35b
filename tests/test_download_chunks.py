"""Chunks in file order over kept-alive connections: the ranges a download asks for, the
connections that carry them, and a pooled connection the server has closed meanwhile."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from tests.servers.nginx import NginxServer

from iris_models.download import FileDownload, FileSource, TransferOptions
from iris_models.download._transport import ConnectionPool, open_range

KIB = 1024
MIB = 1024 * KIB

pytestmark = pytest.mark.usefixtures("clean_network_environment")


def _read_all(response) -> bytes:  # type: ignore[no-untyped-def]
    buffer = bytearray(64 * KIB)
    view = memoryview(buffer)
    data = bytearray()
    while count := response.readinto(view):
        data += view[:count]
    return bytes(data)


def test_one_connection_asks_for_chunks_in_file_order_over_one_kept_alive_connection(
    nginx: NginxServer, tmp_path: Path
) -> None:
    url, digest = nginx.put_random("m.bin", 3 * MIB + 123, seed=3)
    options = TransferOptions(connections=1, chunk_bytes=256 * KIB, buffer_bytes=64 * KIB)
    result = FileDownload(
        FileSource([url], sha256=f"sha256:{digest}"), tmp_path / "m.part", options=options
    ).run()
    assert result.sha256 == f"sha256:{digest}"
    ranged = [entry for entry in nginx.requests("m.bin", at_least=13) if entry.range][1:]
    starts = [int(entry.range.removeprefix("bytes=").split("-")[0]) for entry in ranged]
    assert starts == sorted(starts)  # file order
    assert starts == list(range(0, 3 * MIB + 123, 256 * KIB))[: len(starts)]
    assert len(starts) == 12  # the 123-byte tail rides with the last chunk
    assert len({entry.connection for entry in ranged}) == 1  # all over one connection


def test_several_connections_each_keep_their_connection_across_chunks(
    nginx: NginxServer, tmp_path: Path
) -> None:
    url, digest = nginx.put_random("m.bin", 4 * MIB, seed=4)
    options = TransferOptions(connections=3, chunk_bytes=128 * KIB, buffer_bytes=32 * KIB)
    result = FileDownload(
        FileSource([url], sha256=f"sha256:{digest}"), tmp_path / "m.part", options=options
    ).run()
    assert result.sha256 == f"sha256:{digest}"
    ranged = [entry for entry in nginx.requests("m.bin", at_least=33) if entry.range][1:]
    assert len(ranged) >= 32
    assert len({entry.connection for entry in ranged}) <= 3 + 1  # the probe's own, at most


def test_a_pooled_connection_closed_meanwhile_is_replaced_by_a_fresh_one(
    nginx: NginxServer,
) -> None:
    body = bytes(range(256)) * 400
    url = nginx.put("p.bin", body)
    pool = ConnectionPool()
    first = open_range(url, 0, 999, pool=pool)
    assert _read_all(first) == body[:1000]
    first.close()  # read to its end: back into the pool
    key = next(iter(pool._idle))
    pool._idle[key].close()  # as if the server had dropped it while idle
    second = open_range(url, 1000, 1999, pool=pool)
    assert second.status == 206
    assert _read_all(second) == body[1000:2000]
    second.close()
    pool.close()


def test_a_response_not_read_to_its_end_never_goes_back_to_the_pool(nginx: NginxServer) -> None:
    url = nginx.put("q.bin", b"x" * 100_000)
    pool = ConnectionPool()
    response = open_range(url, 0, None, pool=pool)
    view = memoryview(bytearray(10))
    assert response.readinto(view) == 10
    response.close()
    assert not pool._idle
    again = open_range(url, 0, 9, pool=pool)
    assert _read_all(again) == b"x" * 10
    again.close()
    pool.close()


def test_chunks_are_verified_like_one_range(nginx: NginxServer, tmp_path: Path) -> None:
    data = bytes(range(256)) * 8192  # 2 MiB
    url = nginx.put("r.bin", data)
    digest = hashlib.sha256(data).hexdigest()
    options = TransferOptions(connections=2, chunk_bytes=100_000, buffer_bytes=16 * KIB)
    result = FileDownload(
        FileSource([url], sha256=f"sha256:{digest}"), tmp_path / "r.part", options=options
    ).run()
    assert (tmp_path / "r.part").read_bytes() == data
    assert result.fetched_bytes == len(data)
