"""A private nginx on 127.0.0.1 for the download tests: real Range, If-Range and ETag handling,
per-connection rate limits, a location that ignores ranges, one behind HTTP Basic auth, and a
parsed access log."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Literal, final
from urllib.parse import quote

import numpy as np

__all__ = ["NginxError", "NginxRequest", "NginxServer", "find_nginx"]

Kind = Literal["files", "slow", "nocache", "private"]
KINDS: tuple[Kind, ...] = ("files", "slow", "nocache", "private")
# /private/ answers 401 without these (HTTP Basic). The password has characters a URL must
# percent-encode; nginx's user file ends a password at a colon, so it has none.
PRIVATE_USER = "iris"
PRIVATE_PASSWORD = "p@ss w/rd"

_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0
_PORT_ATTEMPTS = 3
_WRITE_CHUNK_BYTES = 4 << 20
_TEMP_KINDS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


class NginxError(RuntimeError):
    """nginx could not be found or did not start; the message carries its error log."""


@dataclass(frozen=True)
class NginxRequest:
    """One access-log entry: what a client asked for and what nginx sent back."""

    request: str
    """The request line as sent, e.g. ``GET /files/a.gguf HTTP/1.1``."""
    method: str
    uri: str
    """The path after nginx decoded and normalised it, without the query string."""
    args: str
    status: int
    range: str | None
    """The Range header, or None when the request had none."""
    if_range: str | None
    bytes_sent: int
    """Everything sent on the wire for this request, headers included."""
    body_bytes_sent: int
    connection: int
    """nginx's serial number of the TCP connection: equal numbers mean a reused connection."""
    connection_requests: int
    request_time_s: float


def find_nginx() -> Path | None:
    """The nginx binary: on PATH, or Debian's /usr/sbin/nginx (often not on a user's PATH)."""
    found = shutil.which("nginx")
    if found:
        return Path(found)
    fallback = Path("/usr/sbin/nginx")
    return fallback if os.access(fallback, os.X_OK) else None


@final
class NginxServer:
    """``with NginxServer(root) as server: url, digest = server.put_random("m.gguf", 1 << 20)``.

    Serves `root` three ways: ``/files/`` as nginx serves static files (ETag, Last-Modified,
    Range, If-Range), ``/slow/`` the same with ``limit_rate`` per request (so per connection:
    each of N parallel connections gets the full rate), and ``/nocache/`` with no ETag and
    ranges ignored (200 with the whole body to any Range request, ``Accept-Ranges: none``).

    ``/slow/`` sends at most `slow_chunk_bytes` (``rate_bytes_per_s // 16``) per write, then
    waits as long as that takes at the rate: nginx's limit_rate alone lets the first second's
    worth out at once, which makes short transfers (and N short parallel ones even more) look
    faster than the rate.
    """

    def __init__(
        self,
        root: Path | None = None,
        *,
        rate_bytes_per_s: int = 1 << 20,
        workdir: Path | None = None,
        binary: Path | None = None,
    ) -> None:
        if rate_bytes_per_s <= 0:
            raise ValueError(f"rate_bytes_per_s must be positive, not {rate_bytes_per_s}")
        self.rate_bytes_per_s = rate_bytes_per_s
        self.slow_chunk_bytes = max(rate_bytes_per_s // 16, 1024)
        """The most ``/slow/`` sends at once, for any rate: a transfer of n bytes at rate r
        takes at least about ``(n - slow_chunk_bytes) / r`` seconds."""
        self._owned: list[Path] = []
        self.workdir = workdir if workdir is not None else self._make_temp("iris-nginx-")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.root = (root if root is not None else self.workdir / "www").resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.binary = binary if binary is not None else find_nginx()
        self.conf_path = self.workdir / "nginx.conf"
        self.error_log_path = self.workdir / "error.log"
        self.access_log_path = self.workdir / "access.log"
        self.pid_path = self.workdir / "nginx.pid"
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def url(self, name: str, kind: Kind = "files", *, rate_bytes_per_s: int | None = None) -> str:
        """The URL of `name` (a path under `root`) in one of the three locations.

        `rate_bytes_per_s` overrides the server's rate for this URL (``/slow/`` only).
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        url = f"{self.base_url}/{kind}/{quote(self._relative(name).as_posix())}"
        if rate_bytes_per_s is not None:
            if kind != "slow" or rate_bytes_per_s <= 0:
                raise ValueError("rate_bytes_per_s needs kind='slow' and a positive rate")
            url += f"?rate={rate_bytes_per_s}"
        return url

    def credentialed_url(self, name: str) -> str:
        """The ``/private/`` URL of `name` with the user and password in it, encoded."""
        user, password = quote(PRIVATE_USER, safe=""), quote(PRIVATE_PASSWORD, safe="")
        return self.url(name, "private").replace("://", f"://{user}:{password}@", 1)

    def path(self, name: str) -> Path:
        """Where `name` lies on disk."""
        return self.root / self._relative(name)

    def put(self, name: str, data: bytes, *, mtime_s: float | None = None) -> str:
        """Writes `data` as `name` under `root` and returns its ``/files/`` URL.

        The file is replaced atomically (a download already running keeps reading the old one).
        nginx's ETag is the mtime in whole seconds and the size, so rewriting a file with the
        same size within one second keeps its ETag: pass `mtime_s` to change it for sure.
        """
        target = self.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        with self._atomic_writer(target, mtime_s) as out:
            out.write(data)
        return self.url(name)

    def put_random(
        self, name: str, size: int, seed: int = 0, *, mtime_s: float | None = None
    ) -> tuple[str, str]:
        """Writes `size` pseudo-random bytes (the same for the same seed) in chunks, so large
        files never sit in memory. Returns the ``/files/`` URL and the SHA-256 as hex."""
        if size < 0:
            raise ValueError(f"size must not be negative, not {size}")
        target = self.path(name)
        target.parent.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        digest = hashlib.sha256()
        with self._atomic_writer(target, mtime_s) as out:
            left = size
            while left:
                chunk = rng.bytes(min(left, _WRITE_CHUNK_BYTES))
                digest.update(chunk)
                out.write(chunk)
                left -= len(chunk)
        return self.url(name), digest.hexdigest()

    def etag(self, name: str) -> str:
        """The ETag nginx sends for `name` now: ``"<mtime hex>-<size hex>"``, strong."""
        stat = self.path(name).stat()
        return f'"{int(stat.st_mtime):x}-{stat.st_size:x}"'

    def access_log_lines(self) -> list[str]:
        """The raw access log (one JSON object per line)."""
        complete = _read(self.access_log_path).split("\n")[:-1]  # not a line being written
        return [line for line in complete if line.strip()]

    def requests(
        self, uri: str | None = None, *, at_least: int = 0, timeout_s: float = 5.0
    ) -> list[NginxRequest]:
        """Parsed access-log entries, oldest first; only those for `uri` (a path such as
        ``/files/a.gguf``, or a name under root, matched in every location) when given.

        nginx writes an entry when it finishes a request, which can be a moment after the
        client has read the last byte: `at_least` waits (up to `timeout_s`) for that many.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            entries = [_parse_entry(line) for line in self.access_log_lines()]
            if uri is not None:
                wanted = {uri} if uri.startswith("/") else {f"/{k}/{uri}" for k in KINDS}
                entries = [entry for entry in entries if entry.uri in wanted]
            if len(entries) >= at_least or time.monotonic() >= deadline:
                return entries
            time.sleep(0.01)

    def error_log(self) -> str:
        return _read(self.error_log_path)

    def start(self) -> NginxServer:
        if self._process is not None:
            return self
        if self.binary is None:
            raise NginxError("nginx is not installed (apt-get install nginx-light)")
        failures: list[str] = []
        for _ in range(_PORT_ATTEMPTS):
            self.port = _free_port()
            self._write_config()
            self.error_log_path.unlink(missing_ok=True)
            self.pid_path.unlink(missing_ok=True)
            status = self._launch()
            if status is None:
                return self
            log = self.error_log() + _read(self.workdir / "stderr.log")
            failures.append(f"port {self.port}: exit status {status}\n{log.strip()}")
            if "Address already in use" not in log:
                break  # anything else will not go away on another port
        self.port = 0
        self.stop()  # removes the folders it made itself; the log is in the message
        raise NginxError(
            f"nginx ({self.binary}) did not start with {self.conf_path}:\n" + "\n".join(failures)
        )

    def stop(self) -> None:
        """Stops nginx at once (open connections are cut) and removes the temporary folders it
        made itself (none when `workdir` and `root` were given)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)  # fast shutdown; SIGQUIT would wait for clients
            try:
                process.wait(timeout=_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for folder in self._owned:
            shutil.rmtree(folder, ignore_errors=True)
        self._owned.clear()

    def __enter__(self) -> NginxServer:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def _launch(self) -> int | None:
        """Starts nginx and waits until it accepts connections: None, or its exit status if it
        exited instead."""
        assert self.binary is not None
        # -e: the error log from the first line on, not Debian's /var/log/nginx/error.log.
        command = [str(self.binary), "-p", str(self.workdir), "-c", str(self.conf_path)]
        command += ["-e", str(self.error_log_path)]
        with open(self.workdir / "stderr.log", "wb") as stderr:
            process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr
            )
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return process.returncode
            # nginx writes its pid file only after it has bound and listens, so a pid file
            # with our child's pid proves that the port is nginx's and not some other
            # program's (while a bind fails, nginx retries for 2.5 s before it gives up).
            if _read(self.pid_path).strip() == str(process.pid):
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                        pass
                except OSError:
                    pass
                else:
                    self._process = process
                    return None
            time.sleep(0.005)
        process.kill()
        process.wait()
        message = (
            f"nginx did not accept connections on port {self.port} within {_START_TIMEOUT_S} s:"
            f"\n{self.error_log().strip()}"
        )
        self.stop()
        raise NginxError(message)

    def _write_config(self) -> None:
        temp = self.workdir / "temp"
        temp.mkdir(exist_ok=True)
        root = _quoted(f"{self.root}/")
        users = self.workdir / "users"
        users.write_text(f"{PRIVATE_USER}:{{PLAIN}}{PRIVATE_PASSWORD}\n", encoding="utf-8")
        self.conf_path.write_text(
            _CONFIG.format(
                pid=_quoted(self.pid_path),
                error_log=_quoted(self.error_log_path),
                access_log=_quoted(self.access_log_path),
                **{f"temp_{k}": _quoted(temp / k) for k in _TEMP_KINDS},
                port=self.port,
                root=root,
                rate=self.rate_bytes_per_s,
                slow_chunk=self.slow_chunk_bytes,
                users=_quoted(users),
            ),
            encoding="utf-8",
        )

    def _relative(self, name: str) -> Path:
        relative = Path(name.lstrip("/"))
        if not name.strip("/") or ".." in relative.parts:
            raise ValueError(f"not a file name under the document root: {name!r}")
        return relative

    def _make_temp(self, prefix: str) -> Path:
        folder = Path(tempfile.mkdtemp(prefix=prefix))
        self._owned.append(folder)
        return folder

    @contextlib.contextmanager
    def _atomic_writer(self, target: Path, mtime_s: float | None) -> Iterator[BinaryIO]:
        fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "wb") as out:
                yield out
            written = Path(partial)
            written.chmod(0o644)
            if mtime_s is not None:
                os.utime(written, (mtime_s, mtime_s))
            written.replace(target)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise


def _free_port() -> int:
    # Another process may take the port between this and nginx's bind; start() retries then.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _quoted(value: object) -> str:
    text = str(value)
    if any(c in text for c in '"\\\n'):
        raise NginxError(f"path not usable in nginx.conf: {text!r}")
    return f'"{text}"'


def _parse_entry(line: str) -> NginxRequest:
    fields = json.loads(line)
    return NginxRequest(
        request=fields["request"],
        method=fields["method"],
        uri=fields["uri"],
        args=fields["args"],
        status=int(fields["status"]),
        range=fields["range"] or None,
        if_range=fields["if_range"] or None,
        bytes_sent=int(fields["bytes_sent"]),
        body_bytes_sent=int(fields["body_bytes_sent"]),
        connection=int(fields["connection"]),
        connection_requests=int(fields["connection_requests"]),
        request_time_s=float(fields["request_time"]),
    )


# One process (master_process off): it never switches user, so a root-run test suite needs no
# `user` line and nginx can read pytest's 0700 temp folders; daemon off keeps it our child.
_CONFIG = """\
daemon off;
master_process off;
pid {pid};
error_log {error_log} info;

events {{
    worker_connections 512;
}}

http {{
    default_type application/octet-stream;
    log_format iris escape=json '{{"request":"$request","method":"$request_method",'
        '"uri":"$uri","args":"$args","status":"$status","range":"$http_range",'
        '"if_range":"$http_if_range","bytes_sent":"$bytes_sent",'
        '"body_bytes_sent":"$body_bytes_sent","connection":"$connection",'
        '"connection_requests":"$connection_requests","request_time":"$request_time"}}';
    access_log {access_log} iris;

    client_body_temp_path {temp_client_body};
    proxy_temp_path {temp_proxy};
    fastcgi_temp_path {temp_fastcgi};
    uwsgi_temp_path {temp_uwsgi};
    scgi_temp_path {temp_scgi};

    sendfile on;
    tcp_nopush on;
    server_tokens off;
    keepalive_timeout 30s;

    # /slow/...?rate=N overrides the server's rate for one request.
    map $arg_rate $iris_rate {{
        "~^[0-9]+$" $arg_rate;
        default {rate};
    }}

    server {{
        listen 127.0.0.1:{port};
        server_name localhost;

        location / {{
            return 404;
        }}
        location /files/ {{
            alias {root};
        }}
        location /slow/ {{
            alias {root};
            limit_rate $iris_rate;
            limit_rate_after 0;
            sendfile_max_chunk {slow_chunk};
        }}
        location /nocache/ {{
            alias {root};
            etag off;
            max_ranges 0;
            add_header Accept-Ranges none;
        }}
        location /private/ {{
            alias {root};
            auth_basic "iris";
            auth_basic_user_file {users};
        }}
    }}
}}
"""
