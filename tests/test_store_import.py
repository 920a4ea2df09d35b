"""Store.import_path and discover(): single files, folder trees, split models, projectors and
files that only look like GGUF; Hugging Face caches and Ollama models folders built on disk;
the four placements; re-imports, id collisions and an explicit id."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from tests.gguf_py_files import tiny_gguf, write_gguf

from iris_models.errors import IrisModelsError
from iris_models.store import ImportReport, Store
from iris_models.store._import import discover

SAMPLE = Path(__file__).parents[1] / "src" / "iris_models" / "data" / "sample.gguf"
OLLAMA_MODEL = "application/vnd.ollama.image.model"
OLLAMA_PROJECTOR = "application/vnd.ollama.image.projector"
OLLAMA_LICENSE = "application/vnd.ollama.image.license"


# -- helpers ------------------------------------------------------------------------------


def split_gguf(folder: Path, prefix: str = "big") -> list[Path]:
    """A model split by gguf-py into three shards ``<prefix>-0000N-of-00003.gguf``."""
    folder.mkdir(parents=True, exist_ok=True)
    tensors = [(f"t{i}", np.full((2, 8), i, dtype=np.float32), None) for i in range(3)]
    write_gguf(folder / f"{prefix}.gguf", tensors=tensors, split_max_tensors=1)
    shards = [folder / f"{prefix}-{i:05d}-of-00003.gguf" for i in (1, 2, 3)]
    assert all(shard.is_file() for shard in shards)
    return shards


def sha256_hex(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def add_hf_file(
    hub: Path,
    repo: str,
    revision: str,
    name: str,
    source: Path,
    *,
    blob_name: str | None = None,
) -> Path:
    """Lays ``source`` out as huggingface_hub does: the bytes in ``blobs/<sha256>``, a
    relative symlink to it in ``snapshots/<revision>/``, and ``refs/main``."""
    repo_dir = hub / f"models--{repo.replace('/', '--')}"
    blob = repo_dir / "blobs" / (blob_name or sha256_hex(source))
    blob.parent.mkdir(parents=True, exist_ok=True)
    if not blob.exists():
        shutil.copyfile(source, blob)
    link = repo_dir / "snapshots" / revision / name
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(os.path.relpath(blob, link.parent))
    (repo_dir / "refs").mkdir(exist_ok=True)
    (repo_dir / "refs" / "main").write_text(revision)
    return link


def ollama_blob(models: Path, source: Path | bytes) -> tuple[str, Path]:
    data = source if isinstance(source, bytes) else source.read_bytes()
    digest = f"sha256:{hashlib.sha256(data).hexdigest()}"
    blob = models / "blobs" / digest.replace(":", "-")
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    return digest, blob


def add_ollama_model(
    models: Path,
    name: str,
    tag: str,
    model: Path,
    *,
    projector: Path | None = None,
    namespace: str = "library",
) -> Path:
    """An Ollama manifest naming a model blob, a license blob and maybe a projector blob."""
    layers = []
    for media_type, source in ((OLLAMA_MODEL, model), (OLLAMA_PROJECTOR, projector)):
        if source is not None:
            digest, blob = ollama_blob(models, source)
            layers.append({"mediaType": media_type, "digest": digest, "size": blob.stat().st_size})
    digest, blob = ollama_blob(models, b"MIT License\n")
    layers.append({"mediaType": OLLAMA_LICENSE, "digest": digest, "size": blob.stat().st_size})
    manifest = models / "manifests" / "registry.ollama.ai" / namespace / name / tag
    manifest.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "layers": layers,
    }
    manifest.write_text(json.dumps(document))
    return manifest


def store_is_empty(store: Store) -> bool:
    """No record, no model folder, no staging debris."""
    folders = list(store.models_dir.iterdir()) if store.models_dir.exists() else []
    staging = store.root / ".staging"
    debris = list(staging.iterdir()) if staging.exists() else []
    return not store.list_models() and not folders and not debris


def reasons(report: ImportReport) -> dict[str, str]:
    return {Path(skip.path).name: skip.reason for skip in report.skipped}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store") as opened:
        yield opened


# -- single files and folders -------------------------------------------------------------


def test_a_single_file_is_adopted_in_place_with_its_digest_and_header_summary(
    tmp_path: Path, store: Store
) -> None:
    source = tmp_path / "downloads" / "Sample Model.Q4_K_M.gguf"
    source.parent.mkdir()
    shutil.copyfile(SAMPLE, source)
    before = source.stat()

    report = store.import_path(source)

    assert report.skipped == ()
    (model,) = report.imported
    assert model.id == "sample-model.q4_k_m"
    assert model.is_ready
    assert model.storage == "reference"
    assert model.source == str(source)
    assert model.metadata == {"imported_from": "file"}
    assert (model.architecture, model.quantization) == ("llama", "Q4_K_M")
    assert model.size_bytes == SAMPLE.stat().st_size == 345_280
    (model_file,) = model.files
    assert model_file.external
    assert model_file.role == "model"
    assert model_file.sha256 == f"sha256:{sha256_hex(SAMPLE)}"
    assert model_file.path == source.resolve()
    assert store.path(model.id) == source.resolve()
    after = source.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_nlink) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_nlink,
    )


def test_a_folder_tree_imports_every_gguf_file_with_its_own_digest(
    tmp_path: Path, store: Store
) -> None:
    root = tmp_path / "models"
    paths = [
        tiny_gguf(root / "alpha.gguf", "Alpha"),
        tiny_gguf(root / "family" / "beta.GGUF", "Beta"),
        tiny_gguf(root / "family" / "deep" / "gamma.gguf", "Gamma"),
    ]
    (root / "family" / "README.md").write_text("not a model")

    report = store.import_path(root, category="embedding")

    assert report.skipped == ()
    imported = {model.id: model for model in report.imported}
    assert sorted(imported) == ["alpha", "beta", "gamma"]
    digests = {model.files[0].sha256 for model in imported.values()}
    assert digests == {f"sha256:{sha256_hex(path)}" for path in paths}
    assert len(digests) == 3
    for model_id, path in zip(("alpha", "beta", "gamma"), paths, strict=True):
        model = store.get(model_id)
        assert model.category == "embedding"
        assert model.metadata == {"imported_from": "folder"}
        assert model.source == str(path)
        assert model.files[0].path == path.resolve()
    assert [model.id for model in store.list_models()] == ["alpha", "beta", "gamma"]


def test_a_file_named_gguf_that_is_not_gguf_is_skipped_and_the_others_still_go_in(
    tmp_path: Path, store: Store
) -> None:
    root = tmp_path / "models"
    tiny_gguf(root / "good.gguf", "Good")
    (root / "notes.gguf").write_text("these are my notes, not a model\n" * 10)
    (root / "empty.gguf").write_bytes(b"")

    report = store.import_path(root)

    assert [model.id for model in report.imported] == ["good"]
    skipped = reasons(report)
    assert sorted(skipped) == ["empty.gguf", "notes.gguf"]
    for reason in skipped.values():
        assert "not a usable GGUF file" in reason
    assert [model.id for model in store.list_models()] == ["good"]
    assert not list((store.root / ".staging").glob("*"))


def test_a_multimodal_projector_is_skipped_as_a_projector(tmp_path: Path, store: Store) -> None:
    root = tmp_path / "llava"
    tiny_gguf(root / "llava-v1.6.gguf", "Llava")
    tiny_gguf(root / "mmproj-model-f16.gguf", "Projector")

    report = store.import_path(root)

    assert [model.id for model in report.imported] == ["llava-v1.6"]
    assert reasons(report) == {"mmproj-model-f16.gguf": "a multimodal projector, not a model"}


def test_a_projector_given_alone_is_skipped_and_nothing_is_installed(
    tmp_path: Path, store: Store
) -> None:
    projector = tiny_gguf(tmp_path / "model-MMPROJ-f16.gguf", "Projector")

    report = store.import_path(projector)

    assert report.imported == ()
    assert [skip.path for skip in report.skipped] == [str(projector)]
    assert store_is_empty(store)


def test_split_shards_become_one_model_with_every_shard_in_order(
    tmp_path: Path, store: Store
) -> None:
    shards = split_gguf(tmp_path / "split")

    candidates, skipped = discover(tmp_path / "split")
    report = store.import_path(tmp_path / "split")

    assert skipped == []
    assert [candidate.model_id for candidate in candidates] == ["big"]
    assert report.skipped == ()
    (model,) = report.imported
    assert model.id == "big"
    assert model.source == str(shards[0])
    assert [(f.rel_path, f.role) for f in model.files] == [(s.name, "shard") for s in shards]
    assert [f.sha256 for f in model.files] == [f"sha256:{sha256_hex(s)}" for s in shards]
    assert model.size_bytes == sum(s.stat().st_size for s in shards)
    assert model.path == shards[0].resolve()
    assert model.parameter_count == 3 * 16


def test_a_split_model_missing_a_middle_shard_is_skipped_with_the_missing_name(
    tmp_path: Path, store: Store
) -> None:
    shards = split_gguf(tmp_path / "split")
    tiny_gguf(tmp_path / "split" / "whole.gguf", "Whole")
    shards[1].unlink()

    report = store.import_path(tmp_path / "split")

    assert [model.id for model in report.imported] == ["whole"]
    assert reasons(report) == {shards[0].name: f"split model is missing {shards[1].name}"}


def test_a_split_model_missing_its_first_shard_is_skipped_with_a_reason(
    tmp_path: Path, store: Store
) -> None:
    shards = split_gguf(tmp_path / "split")
    shards[0].unlink()

    report = store.import_path(tmp_path / "split")

    assert report.imported == ()
    assert len(report.skipped) == 1
    assert shards[0].name in report.skipped[0].reason


def test_the_same_file_name_in_two_folders_gets_a_second_id(tmp_path: Path, store: Store) -> None:
    first = tiny_gguf(tmp_path / "models" / "a" / "chat.gguf", "One")
    second = tiny_gguf(tmp_path / "models" / "b" / "chat.gguf", "Two")

    report = store.import_path(tmp_path / "models")

    assert report.skipped == ()
    assert {model.id: model.source for model in report.imported} == {
        "chat": str(first),
        "chat-2": str(second),
    }


def test_discover_gives_every_candidate_a_distinct_id(tmp_path: Path, store: Store) -> None:
    tiny_gguf(tmp_path / "models" / "chat-2.gguf", "Zero")
    tiny_gguf(tmp_path / "models" / "chat.gguf", "One")
    tiny_gguf(tmp_path / "models" / "sub" / "chat.gguf", "Two")

    candidates, _skipped = discover(tmp_path / "models")
    report = store.import_path(tmp_path / "models")

    ids = [candidate.model_id for candidate in candidates]
    assert len(set(ids)) == len(ids) == 3
    assert len(report.imported) == 3


def test_a_file_whose_name_makes_no_id_is_skipped_and_the_others_still_go_in(
    tmp_path: Path, store: Store
) -> None:
    tiny_gguf(tmp_path / "models" / "模型.gguf", "Unnamed")
    tiny_gguf(tmp_path / "models" / "named.gguf", "Named")

    report = store.import_path(tmp_path / "models")

    assert [model.id for model in report.imported] == ["named"]
    assert list(reasons(report)) == ["模型.gguf"]


def test_progress_reports_reach_the_total_bytes_of_each_model(tmp_path: Path, store: Store) -> None:
    shards = split_gguf(tmp_path / "split")
    calls: list[tuple[str, int, int]] = []

    store.import_path(tmp_path / "split", on_progress=lambda *call: calls.append(call))

    total = sum(shard.stat().st_size for shard in shards)
    assert calls
    assert {name for name, _done, _total in calls} == {"big"}
    assert {reported for _name, _done, reported in calls} == {total}
    assert calls[-1] == ("big", total, total)
    done = [done for _name, done, _total in calls]
    assert done == sorted(done)


def test_importing_a_path_that_does_not_exist_raises_file_not_found(
    tmp_path: Path, store: Store
) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        store.import_path(tmp_path / "nowhere")
    assert store_is_empty(store)


# -- Hugging Face cache -------------------------------------------------------------------


def test_a_hugging_face_hub_folder_imports_each_repo_with_the_blob_name_as_digest(
    tmp_path: Path, store: Store
) -> None:
    hub = tmp_path / "hub"
    qwen = tiny_gguf(tmp_path / "src" / "qwen.gguf", "Qwen")
    link = add_hf_file(hub, "Qwen/Qwen2-0.5B-GGUF", "a" * 40, "qwen2-0_5b-q4_k_m.gguf", qwen)
    link2 = add_hf_file(hub, "unsloth/gemma-GGUF", "b" * 40, "gemma-q8_0.gguf", SAMPLE)
    (link.parent / "config.json").write_text("{}")
    assert str(link.readlink()) == f"../../blobs/{sha256_hex(qwen)}"

    report = store.import_path(hub)

    assert report.skipped == ()
    imported = {model.id: model for model in report.imported}
    assert sorted(imported) == ["gemma-q8_0", "qwen2-0_5b-q4_k_m"]
    model = imported["qwen2-0_5b-q4_k_m"]
    assert model.name == "Qwen2-0.5B-GGUF/qwen2-0_5b-q4_k_m"
    assert model.source == str(link)
    assert model.metadata == {"imported_from": "huggingface"}
    (model_file,) = model.files
    assert model_file.sha256 == f"sha256:{sha256_hex(qwen)}"
    assert model_file.path == link.resolve()
    assert model_file.path.parent.name == "blobs"
    assert model_file.rel_path == "qwen2-0_5b-q4_k_m.gguf"
    assert imported["gemma-q8_0"].files[0].path == link2.resolve()


def test_a_single_repo_folder_of_the_hub_cache_is_imported(tmp_path: Path, store: Store) -> None:
    hub = tmp_path / "hub"
    link = add_hf_file(hub, "owner/repo", "c" * 40, "model.gguf", SAMPLE)
    add_hf_file(hub, "owner/other", "c" * 40, "other.gguf", tiny_gguf(tmp_path / "o.gguf", "O"))

    report = store.import_path(hub / "models--owner--repo")

    assert [(model.id, model.source) for model in report.imported] == [("model", str(link))]
    assert report.imported[0].files[0].sha256 == f"sha256:{sha256_hex(SAMPLE)}"


def test_a_blob_whose_name_is_not_its_sha256_is_skipped_as_a_digest_mismatch(
    tmp_path: Path, store: Store
) -> None:
    hub = tmp_path / "hub"
    wrong = hashlib.sha256(b"something else").hexdigest()
    add_hf_file(hub, "owner/repo", "d" * 40, "model.gguf", SAMPLE, blob_name=wrong)

    report = store.import_path(hub)

    assert report.imported == ()
    (skip,) = report.skipped
    assert skip.path.endswith("model.gguf")
    assert f"sha256:{sha256_hex(SAMPLE)}" in skip.reason
    assert f"not the expected sha256:{wrong}" in skip.reason
    assert "nothing was installed" in skip.reason
    assert store_is_empty(store)
    assert store.events(kind="state")[-1].to_state == "uninitialized"


def test_the_same_blob_in_two_revisions_is_imported_once(tmp_path: Path, store: Store) -> None:
    hub = tmp_path / "hub"
    first = add_hf_file(hub, "owner/repo", "1" * 40, "model.gguf", SAMPLE)
    add_hf_file(hub, "owner/repo", "2" * 40, "model.gguf", SAMPLE)

    candidates, skipped = discover(hub)
    report = store.import_path(hub)

    assert (len(candidates), skipped) == (1, [])
    assert [(model.id, model.source) for model in report.imported] == [("model", str(first))]
    assert report.skipped == ()


def test_a_changed_file_in_a_newer_revision_is_a_second_model(tmp_path: Path, store: Store) -> None:
    hub = tmp_path / "hub"
    add_hf_file(hub, "owner/repo", "1" * 40, "model.gguf", tiny_gguf(tmp_path / "v1", "V1"))
    add_hf_file(hub, "owner/repo", "2" * 40, "model.gguf", tiny_gguf(tmp_path / "v2", "V2"))

    report = store.import_path(hub)

    assert sorted(model.id for model in report.imported) == ["model", "model-2"]
    assert len({model.files[0].sha256 for model in report.imported}) == 2


def test_a_hub_cache_can_be_copied_into_the_store(tmp_path: Path, store: Store) -> None:
    hub = tmp_path / "hub"
    link = add_hf_file(hub, "owner/repo", "e" * 40, "model.gguf", SAMPLE)

    report = store.import_path(hub, placement="copy")

    (model,) = report.imported
    stored = model.files[0].path
    assert stored == store.model_dir("model") / "model.gguf"
    assert not stored.is_symlink()
    assert stored.read_bytes() == SAMPLE.read_bytes()
    assert link.resolve().is_file()


def test_a_hub_cache_can_be_hard_linked_into_the_store(tmp_path: Path, store: Store) -> None:
    hub = tmp_path / "hub"
    link = add_hf_file(hub, "owner/repo", "e" * 40, "model.gguf", SAMPLE)
    blob = link.resolve()
    blob_inode = blob.stat().st_ino

    report = store.import_path(hub, placement="hardlink")

    assert report.skipped == ()
    (model,) = report.imported
    stored = model.files[0].path
    assert not stored.is_symlink()
    assert stored.stat().st_ino == blob_inode
    assert stored.read_bytes() == SAMPLE.read_bytes()
    assert link.exists()
    assert blob.exists()


def test_moving_out_of_a_hub_cache_is_refused_and_touches_nothing(
    tmp_path: Path, store: Store
) -> None:
    hub = tmp_path / "hub"
    link = add_hf_file(hub, "owner/repo", "e" * 40, "model.gguf", SAMPLE)

    report = store.import_path(hub, placement="move")

    assert report.imported == ()
    (skip,) = report.skipped
    assert "would break its other revisions" in skip.reason
    assert link.resolve().read_bytes() == SAMPLE.read_bytes()
    assert store.list_models() == []


def test_a_hardlink_import_of_a_symlinked_file_links_the_target_bytes(
    tmp_path: Path, store: Store
) -> None:
    target = tiny_gguf(tmp_path / "elsewhere" / "real.gguf", "Real")
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "alias.gguf").symlink_to(target)

    report = store.import_path(tmp_path / "models", placement="hardlink")

    (model,) = report.imported
    stored = model.files[0].path
    assert not stored.is_symlink()
    assert stored.stat().st_ino == target.stat().st_ino


# -- Ollama -------------------------------------------------------------------------------


def test_an_ollama_models_folder_imports_model_and_projector_layers_and_ignores_the_license(
    tmp_path: Path, store: Store
) -> None:
    models = tmp_path / "models"
    weights = tiny_gguf(tmp_path / "src" / "llava.gguf", "Llava")
    projector = tiny_gguf(tmp_path / "src" / "proj.gguf", "Projector")
    manifest = add_ollama_model(models, "llava", "7b", weights, projector=projector)

    report = store.import_path(models)

    assert report.skipped == ()
    (model,) = report.imported
    assert model.id == "llava-7b"
    assert model.name == "llava:7b"
    assert model.source == str(manifest)
    assert model.metadata == {"imported_from": "ollama"}
    assert model.storage == "reference"
    files = {f.role: f for f in model.files}
    assert sorted(files) == ["model", "projector"]
    assert files["model"].rel_path == "llava-7b.gguf"
    assert files["projector"].rel_path == "llava-7b.mmproj.gguf"
    model_digest = f"sha256:{sha256_hex(weights)}"
    assert files["model"].sha256 == model_digest
    assert files["model"].path == models / "blobs" / model_digest.replace(":", "-")
    assert files["projector"].sha256 == f"sha256:{sha256_hex(projector)}"
    assert model.path == files["model"].path
    assert model.size_bytes == weights.stat().st_size + projector.stat().st_size


def test_ollama_ids_are_made_from_namespace_name_and_tag(tmp_path: Path, store: Store) -> None:
    models = tmp_path / "models"
    add_ollama_model(models, "qwen2.5", "0.5b-instruct", tiny_gguf(tmp_path / "a", "A"))
    add_ollama_model(models, "tiny", "latest", SAMPLE, namespace="someone")

    candidates, skipped = discover(models)
    report = store.import_path(models)

    assert skipped == []
    assert [(c.model_id, c.name) for c in candidates] == [
        ("qwen2.5-0.5b-instruct", "qwen2.5:0.5b-instruct"),
        ("someone-tiny-latest", "someone/tiny:latest"),
    ]
    assert sorted(model.id for model in report.imported) == [
        "qwen2.5-0.5b-instruct",
        "someone-tiny-latest",
    ]


def test_an_ollama_manifest_whose_blob_is_missing_is_skipped(tmp_path: Path, store: Store) -> None:
    models = tmp_path / "models"
    add_ollama_model(models, "good", "1b", tiny_gguf(tmp_path / "good", "Good"))
    lost = tiny_gguf(tmp_path / "lost", "Lost")
    manifest = add_ollama_model(models, "lost", "1b", lost)
    digest = f"sha256:{sha256_hex(lost)}"
    (models / "blobs" / digest.replace(":", "-")).unlink()

    report = store.import_path(models)

    assert [model.id for model in report.imported] == ["good-1b"]
    assert [(skip.path, skip.reason) for skip in report.skipped] == [
        (str(manifest), f"blob {digest} is missing")
    ]


@pytest.mark.parametrize(
    "text",
    ["{not json", '{"schemaVersion": 2}', '["layers"]', ""],
    ids=["bad-json", "no-layers", "a-list", "empty"],
)
def test_a_malformed_ollama_manifest_is_skipped_with_the_reason(
    tmp_path: Path, store: Store, text: str
) -> None:
    models = tmp_path / "models"
    add_ollama_model(models, "good", "1b", SAMPLE)
    broken = models / "manifests" / "registry.ollama.ai" / "library" / "broken" / "latest"
    broken.parent.mkdir(parents=True)
    broken.write_text(text)

    report = store.import_path(models)

    assert [model.id for model in report.imported] == ["good-1b"]
    (skip,) = report.skipped
    assert skip.path == str(broken)
    assert skip.reason.startswith("unreadable Ollama manifest: ")


@pytest.mark.parametrize(
    "text",
    ['{"layers": null}', '{"layers": 5}', '{"layers": ["sha256:00"]}'],
    ids=["null", "number", "strings"],
)
def test_a_manifest_with_layers_of_the_wrong_shape_is_skipped(
    tmp_path: Path, store: Store, text: str
) -> None:
    models = tmp_path / "models"
    add_ollama_model(models, "good", "1b", SAMPLE)
    broken = models / "manifests" / "registry.ollama.ai" / "library" / "broken" / "latest"
    broken.parent.mkdir(parents=True)
    broken.write_text(text)

    report = store.import_path(models)

    assert [model.id for model in report.imported] == ["good-1b"]
    assert [skip.path for skip in report.skipped] == [str(broken)]


def test_an_ollama_blob_that_does_not_match_its_digest_is_skipped(
    tmp_path: Path, store: Store
) -> None:
    models = tmp_path / "models"
    add_ollama_model(models, "swapped", "1b", SAMPLE)
    blob = models / "blobs" / f"sha256-{sha256_hex(SAMPLE)}"
    shutil.copyfile(tiny_gguf(tmp_path / "other.gguf", "Other"), blob)

    report = store.import_path(models)

    assert report.imported == ()
    (skip,) = report.skipped
    assert f"not the expected sha256:{sha256_hex(SAMPLE)}" in skip.reason
    assert store_is_empty(store)


# -- placements ---------------------------------------------------------------------------


def test_reference_placement_copies_nothing_and_removing_only_forgets(
    tmp_path: Path, store: Store
) -> None:
    source = tiny_gguf(tmp_path / "keep" / "model.gguf", "Kept")
    content = source.read_bytes()

    (model,) = store.import_path(source).imported

    assert model.storage == "reference"
    assert not store.model_dir("model").exists()
    assert model.files[0].path == source.resolve()
    assert source.stat().st_nlink == 1
    assert store.stats().owned_bytes == 0
    assert store.remove("model") == 0
    assert store.find("model") is None
    assert source.read_bytes() == content


def test_hardlink_placement_gives_the_store_a_second_name_for_the_same_inode(
    tmp_path: Path, store: Store
) -> None:
    source = tiny_gguf(tmp_path / "keep" / "model.gguf", "Linked")

    (model,) = store.import_path(source, placement="hardlink").imported

    stored = store.model_dir("model") / "model.gguf"
    assert model.storage == "hardlink"
    assert model.files[0].path == stored
    assert not model.files[0].external
    assert stored.stat().st_ino == source.stat().st_ino
    assert source.stat().st_nlink == 2
    assert store.remove("model") == 0
    assert source.stat().st_nlink == 1
    assert not store.model_dir("model").exists()


def test_move_placement_takes_the_file_away_from_its_folder(tmp_path: Path, store: Store) -> None:
    source = tiny_gguf(tmp_path / "downloads" / "model.gguf", "Moved")
    content = source.read_bytes()

    (model,) = store.import_path(source, placement="move").imported

    assert not source.exists()
    stored = store.model_dir("model") / "model.gguf"
    assert model.storage == "managed"
    assert model.files[0].path == stored
    assert stored.read_bytes() == content
    assert stored.stat().st_nlink == 1
    assert store.stats().owned_bytes == len(content)


def test_copy_placement_leaves_the_original_and_stores_an_independent_copy(
    tmp_path: Path, store: Store
) -> None:
    source = tiny_gguf(tmp_path / "downloads" / "model.gguf", "Copied")

    (model,) = store.import_path(source, placement="copy").imported

    stored = store.model_dir("model") / "model.gguf"
    assert model.storage == "managed"
    assert source.is_file()
    assert stored.stat().st_ino != source.stat().st_ino
    assert stored.read_bytes() == source.read_bytes()
    assert model.files[0].sha256 == f"sha256:{sha256_hex(source)}"
    assert store.remove("model") == source.stat().st_size
    assert source.is_file()


def test_a_move_that_fails_leaves_the_original_in_place(tmp_path: Path, store: Store) -> None:
    source = tmp_path / "downloads" / "fake.gguf"
    source.parent.mkdir()
    source.write_bytes(b"GGUF" + b"\0" * 60)

    report = store.import_path(source, placement="move")

    assert report.imported == ()
    assert "not a usable GGUF file" in report.skipped[0].reason
    assert source.read_bytes() == b"GGUF" + b"\0" * 60
    assert store_is_empty(store)


# -- re-imports and ids -------------------------------------------------------------------


def test_importing_the_same_file_again_is_skipped_as_already_imported(
    tmp_path: Path, store: Store
) -> None:
    source = tiny_gguf(tmp_path / "model.gguf", "Once")
    store.import_path(source)

    again = store.import_path(source)

    assert again.imported == ()
    assert [(skip.path, skip.reason) for skip in again.skipped] == [
        (str(source), "already imported")
    ]
    assert [model.id for model in store.list_models()] == ["model"]


def test_importing_a_folder_again_adds_only_the_new_files(tmp_path: Path, store: Store) -> None:
    tiny_gguf(tmp_path / "models" / "one.gguf", "One")
    store.import_path(tmp_path / "models")
    tiny_gguf(tmp_path / "models" / "two.gguf", "Two")

    again = store.import_path(tmp_path / "models")

    assert [model.id for model in again.imported] == ["two"]
    assert reasons(again) == {"one.gguf": "already imported"}


def test_a_model_whose_id_is_taken_is_skipped_with_the_reason(tmp_path: Path, store: Store) -> None:
    tiny_gguf(tmp_path / "first" / "chat.gguf", "First")
    other = tiny_gguf(tmp_path / "second" / "chat.gguf", "Second")
    store.import_path(tmp_path / "first")

    report = store.import_path(other)

    assert report.imported == ()
    (skip,) = report.skipped
    assert skip.path == str(other)
    assert "'chat' is taken" in skip.reason
    assert store.get("chat").source == str(tmp_path / "first" / "chat.gguf")


def test_a_relative_path_is_recorded_as_an_absolute_source(
    tmp_path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny_gguf(tmp_path / "a" / "model.gguf", "A")
    tiny_gguf(tmp_path / "b" / "model.gguf", "B")
    monkeypatch.chdir(tmp_path / "a")
    store.import_path("model.gguf")
    monkeypatch.chdir(tmp_path / "b")

    report = store.import_path("model.gguf", model_id="other")

    assert store.get("model").source == str(tmp_path / "a" / "model.gguf")
    assert [model.id for model in report.imported] == ["other"]


def test_an_explicit_id_names_the_single_model(tmp_path: Path, store: Store) -> None:
    source = tiny_gguf(tmp_path / "downloaded-file-name.gguf", "Named")

    (model,) = store.import_path(source, model_id="My.Model-1").imported

    assert model.id == "My.Model-1"
    assert store.get("my.model-1").source == str(source)


def test_an_explicit_id_for_a_folder_of_two_models_is_an_error(
    tmp_path: Path, store: Store
) -> None:
    tiny_gguf(tmp_path / "models" / "one.gguf", "One")
    tiny_gguf(tmp_path / "models" / "two.gguf", "Two")

    with pytest.raises(IrisModelsError, match="holds 2 models; an explicit id needs exactly one"):
        store.import_path(tmp_path / "models", model_id="chosen")
    assert store_is_empty(store)


def test_an_explicit_id_that_is_taken_is_skipped(tmp_path: Path, store: Store) -> None:
    store.import_path(tiny_gguf(tmp_path / "a.gguf", "A"))

    report = store.import_path(tiny_gguf(tmp_path / "b.gguf", "B"), model_id="A")

    assert report.imported == ()
    assert "'A' is taken" in report.skipped[0].reason
    assert store.get("a").source == str(tmp_path / "a.gguf")
