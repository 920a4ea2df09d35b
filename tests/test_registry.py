"""The Registry facade over the store: installed models, paths, use, verify, gc, and the
package's lazy public names."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

import iris_models
from iris_models import Registry
from iris_models.device import load_profile
from iris_models.errors import ModelInUseError, ModelNotFoundError
from iris_models.store import Store

SAMPLE = Path(iris_models.__file__).parent / "data" / "sample.gguf"


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    source = tmp_path / "sample.gguf"
    shutil.copyfile(SAMPLE, source)
    reg = Registry(tmp_path / "store", device=load_profile("raspberry-pi-5"))
    reg.store.install("sample", [source])
    return reg


def test_registry_and_store_are_public_lazy_names():
    assert "Registry" in dir(iris_models)
    assert iris_models.Registry is Registry
    assert iris_models.Store is Store


def test_installed_lists_only_installed_models(registry: Registry):
    registry.store.register("queued-model")
    assert [model.id for model in registry.installed()] == ["sample"]
    assert {model.id for model in registry.repository.all()} == {"sample", "queued-model"}


def test_path_use_and_remove_go_through_the_store(registry: Registry):
    path = registry.path("sample")
    assert path.read_bytes() == SAMPLE.read_bytes()
    with registry.use("sample") as used:
        assert used == path
        with pytest.raises(ModelInUseError):
            registry.remove("sample")
    assert registry.installed_model("sample").use_count == 1
    assert registry.remove("sample") == SAMPLE.stat().st_size
    with pytest.raises(ModelNotFoundError):
        registry.path("sample")


def test_verify_rehashes_every_file_and_reports_a_changed_one(registry: Registry):
    assert [result.ok for result in registry.verify("sample")] == [True]
    path = registry.path("sample")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    assert [result.ok for result in registry.verify("sample")] == [False]
    report = registry.fsck()
    assert [issue.kind for issue in report.issues] == ["digest_mismatch"]


def test_device_is_the_profile_given(registry: Registry):
    assert registry.device.device_class is not None
    assert registry.device == load_profile("raspberry-pi-5")


def test_gc_dry_run_changes_nothing(registry: Registry):
    outcome = registry.gc(dry_run=True)
    assert outcome.result is None
    assert registry.installed_model("sample").is_ready
