"""Registry.recommend and Registry.validate: ranked catalog models for a device profile, the
shape of an installed file, and the pre-download checks (device, storage, URL) without the
real network."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from tests.gguf_py_files import VT, make_gguf, write_gguf

import iris_models.registry
from iris_models import Registry
from iris_models.catalog import ModelDescriptor, load_catalog
from iris_models.device import DeviceProfile, load_profile
from iris_models.recommend import rank
from iris_models.registry import STORAGE_BUFFER_BYTES, ValidationIssue
from iris_models.shape import ModelShape
from iris_models.store import Store

PI = "raspberry-pi-5"
GEMMA = "gemma-3-270m-q4_k_m"
TINYLLAMA = "tinyllama-1.1b-q4_0"
LLAMA_GUARD = "llama-guard-3-8b-q4_0"


@pytest.fixture(autouse=True)
def _no_environment_catalog(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IRIS_MODELS_CATALOG", raising=False)
    monkeypatch.delenv("IRIS_MODELS_DEVICE_OVERRIDES", raising=False)


def catalog_model(model_id: str) -> ModelDescriptor:
    return load_catalog(environment=False).get(model_id)


TINY_ID = "tiny-test-llm"
TINY_CATALOG_WEIGHTS = 10**9  # the catalog's figure; the installed file is far smaller


def _tiny_catalog(path: Path, *, with_shape: bool = True, size: int | None = 4096) -> Path:
    shape = ModelShape(
        architecture="llama",
        block_count=2,
        embedding_length=16,
        head_count=4,
        head_count_kv=(4, 4),
        key_length=4,
        value_length=4,
        weights_bytes=TINY_CATALOG_WEIGHTS,
        context_length=2048,
    )
    entry: dict[str, Any] = {
        "id": TINY_ID,
        "name": "Tiny test LLM",
        "type": "llm",
        "parameterCount": "1M",
        "quantization": "F32",
        "contextSize": 2048,
        "downloadUrl": "https://models.example.invalid/tiny.gguf",
        "deviceRequirements": {"minRAM": 1 << 20, "supportedBackends": ["CPU_NEON", "CPU_X86"]},
    }
    if size is not None:
        entry["fileSize"] = size
    if with_shape:
        entry["gguf"] = shape.to_catalog()
    path.write_text(json.dumps({"version": "1", "models": {"llm": [entry]}}), "utf-8")
    return path


def _tiny_model_file(path: Path) -> Path:
    kvs = [
        ("llama.block_count", 2, VT.UINT32, None),
        ("llama.embedding_length", 16, VT.UINT32, None),
        ("llama.attention.head_count", 4, VT.UINT32, None),
        ("llama.context_length", 2048, VT.UINT32, None),
    ]
    tensors = [("token_embd.weight", np.zeros((8, 16), np.float32), None)]
    return write_gguf(path, kvs, tensors)


@pytest.fixture
def make_registry(tmp_path: Path) -> Iterator[Callable[..., Registry]]:
    """Registries on one store under tmp_path, for a profile (a name or a profile), closed
    after the test."""
    made: list[Registry] = []

    def make(profile: str | DeviceProfile = PI, **options: Any) -> Registry:
        device = load_profile(profile) if isinstance(profile, str) else profile
        made.append(Registry(tmp_path / "store", device=device, **options))
        return made[-1]

    yield make
    for registry in made:
        registry.close()


@pytest.fixture
def pi_registry(tmp_path: Path, make_registry: Callable[..., Registry]) -> Registry:
    return make_registry(catalogs=[_tiny_catalog(tmp_path / "user-catalog.json")])


def test_registry_recommend_ranks_the_compatible_models(pi_registry: Registry) -> None:
    results = pi_registry.recommend(context_length=2048)
    assert results == rank(results)
    assert all(r.compatible for r in results)
    by_id = {r.model.id: r for r in results}
    assert {GEMMA, TINY_ID, TINYLLAMA} <= set(by_id)
    assert by_id[GEMMA].shape_source == "catalog"
    assert by_id[TINY_ID].shape_source == "catalog"
    assert by_id[TINYLLAMA].shape_source is None
    assert all(r.context_length <= 2048 for r in results)
    embeddings = pi_registry.recommend(type="embedding")
    assert [r.model.id for r in embeddings] == ["all-minilm-l6-v2-q8_0"]


def test_registry_recommend_keeps_incompatible_models_when_asked(
    make_registry: Callable[..., Registry],
) -> None:
    registry = make_registry("budget-android-phone")
    assert LLAMA_GUARD not in {r.model.id for r in registry.recommend()}
    everything = registry.recommend(include_incompatible=True)
    assert everything[-1].model.id == LLAMA_GUARD
    assert not everything[-1].compatible


def test_an_installed_file_gives_the_shape(pi_registry: Registry, tmp_path: Path) -> None:
    pi_registry.store.install(TINY_ID, [_tiny_model_file(tmp_path / "tiny.gguf")])
    rec = next(r for r in pi_registry.recommend(context_length=1024) if r.model.id == TINY_ID)
    assert rec.shape_source == "installed"
    assert rec.memory is not None
    assert rec.memory.weights_bytes == 8 * 16 * 4  # the file's tensors, not the catalog's
    assert any("the header (installed) says" in reason for reason in rec.reasons)


def test_an_installed_file_without_layers_falls_back_to_the_catalog(
    pi_registry: Registry, tmp_path: Path
) -> None:
    pi_registry.store.install(TINY_ID, [make_gguf(tmp_path / "plain.gguf", "plain")])
    rec = next(r for r in pi_registry.recommend() if r.model.id == TINY_ID)
    assert rec.shape_source == "catalog"
    assert rec.memory is not None
    assert rec.memory.weights_bytes == TINY_CATALOG_WEIGHTS


DiskUsage = collections.namedtuple("DiskUsage", "total used free")


@pytest.fixture
def free_disk(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Patches the free-space probe: set ``state["free"]``; ``state["paths"]`` records calls."""
    state: dict[str, Any] = {"free": 1 << 50, "paths": []}

    def disk_usage(path: Any) -> DiskUsage:
        state["paths"].append(Path(path))
        return DiskUsage(1 << 51, 0, state["free"])

    monkeypatch.setattr(iris_models.registry.shutil, "disk_usage", disk_usage)
    return state


def test_validate_passes_a_model_that_fits(
    pi_registry: Registry, free_disk: dict[str, Any]
) -> None:
    result = pi_registry.validate(GEMMA, check_url=False)
    assert result.valid
    assert result.issues == ()
    assert result.reason == "model is compatible and ready for download"
    assert "URL not checked (check_url=False)" in result.notes
    assert any(note.startswith("storage: ") for note in result.notes)


def test_validate_reports_a_model_too_big_for_the_device(
    make_registry: Callable[..., Registry], free_disk: dict[str, Any]
) -> None:
    registry = make_registry("budget-android-phone")
    result = registry.validate(LLAMA_GUARD, check_url=False)
    assert not result.valid
    assert result.issues == (ValidationIssue.DEVICE_INCOMPATIBLE,)
    assert "insufficient RAM" in result.reason
    small = load_profile(PI, overrides={"memory.total_bytes": 512 << 20})
    shaped = make_registry(small).validate(GEMMA, check_url=False)
    assert shaped.issues == (ValidationIssue.DEVICE_INCOMPATIBLE,)


def test_validate_reports_insufficient_storage(
    pi_registry: Registry, free_disk: dict[str, Any]
) -> None:
    size = catalog_model(GEMMA).total_size_bytes
    assert size is not None
    free_disk["free"] = size + STORAGE_BUFFER_BYTES - 1
    result = pi_registry.validate(GEMMA, check_url=False)
    assert result.issues == (ValidationIssue.INSUFFICIENT_STORAGE,)
    assert result.reason.startswith("insufficient storage space")
    free_disk["free"] = size + STORAGE_BUFFER_BYTES
    assert pi_registry.validate(GEMMA, check_url=False).valid


def test_validate_lists_every_problem(
    make_registry: Callable[..., Registry], free_disk: dict[str, Any]
) -> None:
    free_disk["free"] = 0
    registry = make_registry("budget-android-phone")
    result = registry.validate(LLAMA_GUARD, check_url=False)
    assert result.issues == (
        ValidationIssue.DEVICE_INCOMPATIBLE,
        ValidationIssue.INSUFFICIENT_STORAGE,
    )


def test_validate_without_a_size_skips_the_storage_check(
    tmp_path: Path, make_registry: Callable[..., Registry], free_disk: dict[str, Any]
) -> None:
    catalog = _tiny_catalog(tmp_path / "c.json", size=None)
    registry = make_registry(catalogs=[catalog])
    free_disk["free"] = 0
    result = registry.validate(TINY_ID, check_url=False)
    assert result.valid
    assert "storage not checked: the catalog gives no size" in result.notes


def test_offline_validate_does_not_check_the_url(
    make_registry: Callable[..., Registry],
    free_disk: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IRIS_MODELS_OFFLINE", "1")
    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        raise httpx.ConnectError("no network in tests", request=request)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        registry = make_registry(client=client)
        result = registry.validate(GEMMA)
    assert result.valid
    assert "URL not checked: offline mode" in result.notes
    assert requests == []


@pytest.mark.parametrize(("status", "valid"), [(200, True), (404, False)])
def test_online_validate_asks_the_url_with_head(
    make_registry: Callable[..., Registry],
    free_disk: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
    status: int,
    valid: bool,
) -> None:
    for name in ("IRIS_MODELS_OFFLINE", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status)

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        registry = make_registry(client=client)
        result = registry.validate(GEMMA)
    assert [(r.method, str(r.url)) for r in seen] == [("HEAD", catalog_model(GEMMA).download_url)]
    assert result.valid is valid
    if valid:
        assert "URL answers" in result.notes
    else:
        assert result.issues == (ValidationIssue.URL_INACCESSIBLE,)


def test_validate_measures_the_disk_of_the_store_it_was_given(
    tmp_path: Path, free_disk: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.setenv("IRIS_MODELS_HOME", str(elsewhere))
    with Store(tmp_path / "store") as store:
        registry = Registry(store=store, device=load_profile(PI))
        free_disk["paths"].clear()
        registry.validate(GEMMA, check_url=False)
        assert free_disk["paths"] == [store.root]
