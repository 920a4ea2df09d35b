"""What a review of the download engine asked to be proven: credentials stay with their host,
the hub's advertised digest cannot be overridden further down a redirect chain, HTTPS is not
left on a redirect, a saved state never outlives the bytes it describes or the digest it was
fetched for, and a file of unknown size (a chunked body) downloads."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.servers.http_server import HTTPTestServer
from tests.servers.nginx import NginxServer

from iris_models.download import FileDownload, FileSource, ResumeState, TransferOptions, probe
from iris_models.download._file import _MirrorFailed, _redirect_target
from iris_models.download._strategies import TransferRequest, strategy_for

pytestmark = pytest.mark.usefixtures("clean_network_environment")

BODY = bytes(range(256)) * 2048  # 512 KiB
DIGEST = f"sha256:{hashlib.sha256(BODY).hexdigest()}"


def test_the_hf_token_goes_to_the_hub_and_never_to_the_cdn_it_redirects_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HTTPTestServer() as hub, HTTPTestServer() as cdn:
        cdn_url = cdn.serve("/blob", BODY, etag='"blob-v1"')
        hub.serve(
            "/owner/repo/resolve/main/m.gguf",
            status=302,
            headers={"Location": cdn_url, "X-Linked-Etag": f'"{DIGEST.removeprefix("sha256:")}"'},
        )
        monkeypatch.setenv("HF_ENDPOINT", hub.base_url)
        monkeypatch.setenv("HF_TOKEN", "hf_SECRET")
        request = TransferRequest(
            FileSource(["hf://owner/repo/m.gguf"]),
            tmp_path / "m.part",
            TransferOptions(connections=2, chunk_bytes=64 * 1024, buffer_bytes=16 * 1024),
        )
        result = strategy_for("hf://owner/repo/m.gguf").transfer(request).run()

        assert result.sha256 == DIGEST
        assert result.digest_source == "server"
        assert all(r.headers.get("authorization") == "Bearer hf_SECRET" for r in hub.requests())
        assert cdn.requests()  # the bytes came from the CDN ...
        assert all("authorization" not in r.headers for r in cdn.requests())  # ... token-free


def test_a_digest_the_hub_advertises_cannot_be_overridden_by_the_cdn(tmp_path: Path) -> None:
    with HTTPTestServer() as hub, HTTPTestServer() as cdn:
        forged = hashlib.sha256(b"something else").hexdigest()
        cdn_url = cdn.serve("/blob", BODY, etag='"v1"', headers={"X-Linked-Etag": f'"{forged}"'})
        hub_url = hub.serve(
            "/m",
            status=302,
            headers={"Location": cdn_url, "X-Linked-Etag": f'"{DIGEST.removeprefix("sha256:")}"'},
        )
        assert probe(hub_url).linked_sha256 == DIGEST


def test_a_redirect_from_https_to_http_is_refused() -> None:
    with pytest.raises(_MirrorFailed, match="refusing to leave HTTPS"):
        _redirect_target("https://hub.example/m", "http://cdn.example/m")
    assert _redirect_target("https://hub.example/m", "/other") == "https://hub.example/other"


def test_a_refused_redirect_does_not_show_the_password_in_its_location() -> None:
    with pytest.raises(_MirrorFailed, match="refusing to leave HTTPS") as refused:
        _redirect_target("https://hub.example/m", "http://user:s3cret@cdn.example/m")
    assert "s3cret" not in str(refused.value)
    assert "cdn.example/m" in str(refused.value)


def test_a_state_saved_for_another_digest_is_not_resumed_and_is_forgotten_first(
    nginx: NginxServer, tmp_path: Path
) -> None:
    url = nginx.put("m.bin", BODY)
    part = tmp_path / "m.part"
    part.write_bytes(BODY[:100_000])
    saved = ResumeState(url=url, size=len(BODY), validator=None, sha256="sha256:" + "0" * 64)
    checkpoints: list[ResumeState] = []
    probed = probe(url)
    saved.validator = probed.validator
    saved.done.add(0, 100_000)
    result = FileDownload(
        FileSource([url], sha256=DIGEST),
        part,
        state=saved,
        on_checkpoint=checkpoints.append,
    ).run()
    assert result.sha256 == DIGEST
    assert result.fetched_bytes == len(BODY)  # nothing of the other digest's bytes kept
    assert checkpoints[0].done.total == 0  # the stale state was replaced before any write
    assert checkpoints[0].sha256 == DIGEST


def test_a_state_saved_for_the_same_digest_resumes(nginx: NginxServer, tmp_path: Path) -> None:
    url = nginx.put("m.bin", BODY)
    part = tmp_path / "m.part"
    part.write_bytes(BODY[:100_000] + bytes(len(BODY) - 100_000))
    saved = ResumeState(url=url, size=len(BODY), validator=probe(url).validator, sha256=DIGEST)
    saved.done.add(0, 100_000)
    result = FileDownload(FileSource([url], sha256=DIGEST), part, state=saved).run()
    assert result.sha256 == DIGEST
    assert result.fetched_bytes == len(BODY) - 100_000


class _Chunked(BaseHTTPRequestHandler):
    """A server that ignores ranges and sends the body chunked, with no length."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for start in range(0, len(BODY), 100_000):
            piece = BODY[start : start + 100_000]
            self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        self.wfile.write(b"0\r\n\r\n")

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def chunked_url() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Chunked)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/m.bin"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def test_a_file_of_unknown_size_sent_chunked_downloads_verified(
    chunked_url: str, tmp_path: Path
) -> None:
    remote = probe(chunked_url)
    assert (remote.size, remote.accepts_ranges) == (None, False)
    result = FileDownload(FileSource([chunked_url], sha256=DIGEST), tmp_path / "m.part").run()
    assert result.sha256 == DIGEST
    assert result.size == len(BODY)
    assert (tmp_path / "m.part").read_bytes() == BODY


def test_an_interim_1xx_response_is_skipped_for_the_final_one() -> None:
    import socket

    from iris_models.download._transport import open_range

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]

    def answer() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(
                b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n"
                b"HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-4/10\r\n"
                b"Content-Length: 5\r\n\r\nhello"
            )

    server = threading.Thread(target=answer)
    server.start()
    try:
        response = open_range(f"http://127.0.0.1:{port}/m", 0, 4)
        buffer = memoryview(bytearray(16))
        count = response.readinto(buffer)
        response.close()
    finally:
        server.join(timeout=10)
        listener.close()
    assert response.status == 206
    assert bytes(buffer[:count]) == b"hello"


def test_a_408_request_timeout_is_retried_not_taken_as_refusal(tmp_path: Path) -> None:
    from tests.servers.fault_server import FaultServer, Status

    with FaultServer() as server:
        url = server.serve("/m", BODY, faults=[Status(408, after_requests=1, times=1)])
        retries: list[str] = []
        result = FileDownload(
            FileSource([url], sha256=DIGEST),
            tmp_path / "m.part",
            options=TransferOptions(backoff_s=0.01, max_backoff_s=0.02),
            on_retry=lambda _attempt, _delay, reason: retries.append(reason),
        ).run()
    assert result.sha256 == DIGEST
    assert len(retries) == 1
    assert "408" in retries[0]


def test_a_full_disk_while_copying_a_file_url_is_a_resumable_space_error(tmp_path: Path) -> None:
    import errno
    import subprocess

    from iris_models.errors import InsufficientSpaceError

    mount = tmp_path / "small"
    mount.mkdir()
    command = ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)]
    mounted = subprocess.run(command, check=False, capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        source = tmp_path / "m.bin"
        source.write_bytes(BODY)  # 512 KiB into 256 KiB
        request = TransferRequest(FileSource([source.as_uri()], sha256=DIGEST), mount / "m.part")
        copy = strategy_for(source.as_uri()).transfer(request)
        with pytest.raises(InsufficientSpaceError) as full:
            copy.run()
        assert full.value.errno == errno.ENOSPC
        assert "resumes" in str(full.value)
    finally:
        subprocess.run(["umount", str(mount)], check=False)


def test_a_mirror_serving_a_file_of_another_size_gives_way_to_the_next(
    nginx: NginxServer, tmp_path: Path
) -> None:
    wrong = nginx.put("other.bin", BODY[:1000])
    right = nginx.put("m.bin", BODY)
    result = FileDownload(
        FileSource([wrong, right], size=len(BODY), sha256=DIGEST), tmp_path / "m.part"
    ).run()
    assert result.sha256 == DIGEST
    assert result.url == right
