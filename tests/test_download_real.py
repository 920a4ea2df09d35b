"""End to end with the real model (opt-in: IRIS_MODELS_REAL_MODEL=1): the 253 MB gemma-3-270m
file served from loopback nginx, pulled under its real bundled catalog entry with the nginx
URL as a mirror, verified against the catalog's digest and installed READY."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.conftest import GEMMA_SHA256, GEMMA_SIZE
from tests.servers.nginx import NginxServer

from iris_models import Registry
from iris_models.download import Completed, DownloadEvent, Paused
from iris_models.errors import DownloadPaused

GEMMA_ID = "gemma-3-270m-q4_k_m"

pytestmark = pytest.mark.usefixtures("clean_network_environment")


def _serve(nginx: NginxServer, real: Path) -> str:
    target = nginx.root / "gemma.gguf"
    try:
        os.link(real, target)  # no copy of 253 MB when both are on one file system
    except OSError:
        target.symlink_to(real)
    return nginx.url("gemma.gguf")


def test_real_gemma_pulls_from_a_loopback_mirror_under_its_real_catalog_entry(
    real_gemma_path: Path, nginx: NginxServer, tmp_path: Path
) -> None:
    url = _serve(nginx, real_gemma_path)
    registry = Registry(tmp_path / "store")
    events: list[DownloadEvent] = []
    model = registry.pull_sync(GEMMA_ID, mirrors=[url], on_event=events.append)
    assert model.state.value == "ready"
    assert model.architecture == "gemma3"
    assert model.size_bytes == GEMMA_SIZE
    assert model.files[0].sha256 == f"sha256:{GEMMA_SHA256}"
    completed = events[-1]
    assert isinstance(completed, Completed)
    assert completed.digest_source == "catalog"
    assert completed.fetched_bytes == GEMMA_SIZE
    logged = nginx.requests("gemma.gguf", at_least=2)  # the probe, then the ranges
    served = sum(request.body_bytes_sent for request in logged)
    assert served <= GEMMA_SIZE + 1  # the probe's one byte, then each byte once


def test_real_gemma_paused_half_way_resumes_without_fetching_it_again(
    real_gemma_path: Path, nginx_factory: Callable[..., NginxServer], tmp_path: Path
) -> None:
    nginx = nginx_factory(rate_bytes_per_s=64 << 20)
    _serve(nginx, real_gemma_path)
    url = nginx.url("gemma.gguf", kind="slow")
    registry = Registry(tmp_path / "store")
    paused = False

    def pause_at_a_third(event: DownloadEvent) -> None:
        nonlocal paused
        done = getattr(event, "bytes_done", 0)
        if not paused and done > GEMMA_SIZE // 3:
            paused = True
            registry.downloader.pause(GEMMA_ID)

    events: list[DownloadEvent] = []
    with pytest.raises(DownloadPaused):
        registry.pull_sync(
            GEMMA_ID, mirrors=[url], on_event=lambda e: (events.append(e), pause_at_a_third(e))
        )
    assert any(isinstance(event, Paused) for event in events)
    assert registry.store.get(GEMMA_ID).state.value == "paused"
    kept = sum(item.bytes_done for item in registry.store.saved_downloads(GEMMA_ID))
    assert kept > GEMMA_SIZE // 4

    events.clear()
    model = registry.pull_sync(GEMMA_ID, mirrors=[url], on_event=events.append)
    assert model.files[0].sha256 == f"sha256:{GEMMA_SHA256}"
    completed = events[-1]
    assert isinstance(completed, Completed)
    assert completed.fetched_bytes <= GEMMA_SIZE - kept + (8 << 20)
