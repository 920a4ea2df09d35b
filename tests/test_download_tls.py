"""HTTPS against a real TLS server on loopback with a self-signed certificate: refused with a
clear error when the system does not trust it (and not retried), downloaded and verified over
the socket transport's own TLS when SSL_CERT_FILE names it."""

from __future__ import annotations

import hashlib
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.services import require_service

from iris_models.download import FileDownload, FileSource, TransferOptions, _transport, probe
from iris_models.errors import NetworkError

BODY = bytes(range(256)) * 4096  # 1 MiB
DIGEST = f"sha256:{hashlib.sha256(BODY).hexdigest()}"

pytestmark = pytest.mark.usefixtures("clean_network_environment")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        wanted = self.headers.get("Range", "")
        start, end = 0, len(BODY) - 1
        if wanted.startswith("bytes="):
            first, _, last = wanted.removeprefix("bytes=").partition("-")
            start = int(first)
            end = int(last) if last else end
        part = BODY[start : end + 1]
        self.send_response(206 if wanted else 200)
        self.send_header("ETag", '"tls-v1"')
        self.send_header("Accept-Ranges", "bytes")
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(BODY)}")
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        self.wfile.write(part)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(an https URL on 127.0.0.1, the server's self-signed certificate)."""
    openssl = shutil.which("openssl")
    require_service(openssl is not None, "the openssl command is not installed")
    assert openssl is not None
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"https://127.0.0.1:{httpd.server_address[1]}/model.bin", cert
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


@pytest.fixture
def fresh_tls_context() -> Iterator[None]:
    """The transport caches its TLS context per process; these tests change what it trusts."""
    _transport._tls_context.cache_clear()
    yield
    _transport._tls_context.cache_clear()


def test_an_untrusted_certificate_is_a_clear_error_that_is_not_retried(
    tls_server: tuple[str, Path], tmp_path: Path, fresh_tls_context: None
) -> None:
    url, _ = tls_server
    with pytest.raises(NetworkError, match="TLS certificate check failed") as probed:
        probe(url)
    assert probed.value.status is None
    retries: list[str] = []
    download = FileDownload(
        FileSource([url], sha256=DIGEST),
        tmp_path / "m.part",
        options=TransferOptions(backoff_s=0.01),
        on_retry=lambda _attempt, _delay, reason: retries.append(reason),
    )
    with pytest.raises(NetworkError, match="TLS certificate check failed"):
        download.run()
    assert retries == []  # a certificate does not get better by asking again


def test_a_trusted_certificate_downloads_over_tls_verified(
    tls_server: tuple[str, Path],
    tmp_path: Path,
    fresh_tls_context: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, cert = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    options = TransferOptions(connections=2, chunk_bytes=128 * 1024, buffer_bytes=32 * 1024)
    result = FileDownload(
        FileSource([url], sha256=DIGEST), tmp_path / "m.part", options=options
    ).run()
    assert result.sha256 == DIGEST
    assert (tmp_path / "m.part").read_bytes() == BODY
