"""Adopting GGUF files already on disk: a file, a folder, a Hugging Face cache or an Ollama
models folder. Each model is parsed and hashed like any install; by default the files stay
where they are (placement ``reference``), so nothing is copied."""

from __future__ import annotations

import errno
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ImportModelError, InvalidModelIdError, IrisModelsError
from ._ids import derive_model_id

if TYPE_CHECKING:
    from ._records import InstalledModel
    from ._store import FileSpec, Placement, Store

__all__ = ["ImportReport", "ImportSkip", "discover", "import_models"]

_SHARD = re.compile(r"^(?P<prefix>.+)-(?P<index>\d{5})-of-(?P<count>\d{5})\.gguf$", re.IGNORECASE)
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_OLLAMA_MODEL = "application/vnd.ollama.image.model"
_OLLAMA_PROJECTOR = "application/vnd.ollama.image.projector"


@dataclass(frozen=True)
class Candidate:
    """A model found on disk, before it is installed."""

    model_id: str
    name: str
    files: tuple[FileSpec, ...]
    source: str
    origin: str
    """``file``, ``folder``, ``huggingface`` or ``ollama``."""


@dataclass(frozen=True)
class ImportSkip:
    path: str
    reason: str


@dataclass(frozen=True)
class ImportReport:
    imported: tuple[InstalledModel, ...] = ()
    skipped: tuple[ImportSkip, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        return {
            "imported": [model.to_dict() for model in self.imported],
            "skipped": [{"path": skip.path, "reason": skip.reason} for skip in self.skipped],
        }


def import_models(
    store: Store,
    path: Path,
    *,
    placement: Placement,
    model_id: str | None = None,
    category: str = "llm",
    on_progress: Callable[[str, int, int], None] | None = None,
) -> ImportReport:
    """Finds the models under ``path`` and installs each one; a model that cannot be adopted
    is skipped with the reason, and the others still go in."""
    candidates, skipped = discover(path)
    if model_id is not None:
        if len(candidates) != 1:
            message = (
                f"{path} holds {len(candidates)} models; an explicit id needs exactly one "
                "(import them without --id, or point at one file)"
            )
            raise ImportModelError(message)
        candidates = [_with_id(candidates[0], model_id)]
    from ._store import Placement

    with store.db.read() as sql:  # only the sources: building every model would be waste
        known_sources = {
            row[0] for row in sql.execute("SELECT source FROM models WHERE source IS NOT NULL")
        }
    store_root = store.root.resolve()
    imported = []
    for candidate in candidates:
        if any(spec.path.resolve().is_relative_to(store_root) for spec in candidate.files):
            continue  # the store's own files, met when importing a folder that holds the store
        if placement is Placement.MOVE and candidate.origin in ("huggingface", "ollama"):
            reason = (
                f"moving out of the {candidate.origin} cache would break its other revisions "
                "or tags that share the file; use --mode hardlink, copy or reference"
            )
            skipped.append(ImportSkip(candidate.source, reason))
            continue
        if candidate.source in known_sources:
            skipped.append(ImportSkip(candidate.source, "already imported"))
            continue
        existing = store.find(candidate.model_id)
        if existing is not None:
            reason = f"the id {candidate.model_id!r} is taken (use --id to choose another)"
            skipped.append(ImportSkip(candidate.source, reason))
            continue

        def report(done: int, total: int, name: str = candidate.model_id) -> None:
            if on_progress is not None:
                on_progress(name, done, total)

        try:
            model = store.install(
                candidate.model_id,
                candidate.files,
                placement=placement,
                name=candidate.name,
                category=category,
                source=candidate.source,
                metadata={"imported_from": candidate.origin},
                on_progress=report,
            )
        except (IrisModelsError, OSError) as error:
            skipped.append(ImportSkip(candidate.source, str(error)))
            continue
        imported.append(model)
    return ImportReport(tuple(imported), tuple(skipped))


def _with_id(candidate: Candidate, model_id: str) -> Candidate:
    return Candidate(model_id, candidate.name, candidate.files, candidate.source, candidate.origin)


def discover(path: Path) -> tuple[list[Candidate], list[ImportSkip]]:
    """The models under ``path``, and what was passed over (with why)."""
    path = path.expanduser().absolute()
    if not path.exists():
        raise FileNotFoundError(errno.ENOENT, "does not exist", str(path))
    skipped: list[ImportSkip] = []
    if path.is_file():
        candidates = list(_from_files([path], "file", skipped))
    elif (path / "manifests").is_dir() and (path / "blobs").is_dir():
        candidates = list(_from_ollama(path, skipped))
    elif path.name.startswith("models--") or any(path.glob("models--*")):
        candidates = list(_from_huggingface(path, skipped))
    else:
        found = sorted(p for p in path.rglob("*") if p.suffix.lower() == ".gguf" and p.is_file())
        candidates = list(_from_files(found, "folder", skipped))
    return _unique_ids(candidates), skipped


def _unique_ids(candidates: list[Candidate]) -> list[Candidate]:
    """Gives a repeated id a free ``-2``, ``-3``, ... suffix (free of every other id found)."""
    taken = {candidate.model_id.lower() for candidate in candidates}
    used: set[str] = set()
    unique = []
    for candidate in candidates:
        model_id = candidate.model_id
        if model_id.lower() in used:
            suffix = 2
            while f"{model_id}-{suffix}".lower() in taken | used:
                suffix += 1
            model_id = f"{model_id}-{suffix}"
            candidate = _with_id(candidate, model_id)
        used.add(model_id.lower())
        unique.append(candidate)
    return unique


def _from_files(paths: list[Path], origin: str, skipped: list[ImportSkip]) -> Iterator[Candidate]:
    from ._store import FileSpec

    for path in paths:
        shard = _SHARD.match(path.name)
        if shard is None:
            if "mmproj" in path.name.lower():
                skipped.append(ImportSkip(str(path), "a multimodal projector, not a model"))
                continue
            model_id = _id_for(path.name, path, skipped)
            if model_id is not None:
                yield Candidate(model_id, path.stem, (FileSpec(path),), str(path), origin)
            continue
        count = int(shard["count"])
        prefix = shard["prefix"]
        shards = [
            path.with_name(f"{prefix}-{i:05d}-of-{count:05d}.gguf") for i in range(1, count + 1)
        ]
        if int(shard["index"]) != 1:
            if not shards[0].is_file() and path == _first_present(shards):
                reason = f"split model is missing its first shard {shards[0].name}"
                skipped.append(ImportSkip(str(path), reason))
            continue  # otherwise imported with its first shard
        missing = [s.name for s in shards if not s.is_file()]
        if missing:
            skipped.append(ImportSkip(str(path), f"split model is missing {', '.join(missing)}"))
            continue
        model_id = _id_for(prefix, path, skipped)
        if model_id is not None:
            files = tuple(FileSpec(s, role="shard") for s in shards)
            yield Candidate(model_id, prefix, files, str(path), origin)


def _first_present(paths: list[Path]) -> Path | None:
    return next((path for path in paths if path.is_file()), None)


def _id_for(name: str, path: Path, skipped: list[ImportSkip]) -> str | None:
    try:
        return derive_model_id(name)
    except InvalidModelIdError as error:
        skipped.append(ImportSkip(str(path), f"{error} (import this file alone with --id)"))
        return None


def _from_huggingface(path: Path, skipped: list[ImportSkip]) -> Iterator[Candidate]:
    """``models--owner--repo/snapshots/<revision>/...gguf``; LFS blobs are named by their
    SHA-256, which becomes the digest the file must have."""
    from ._store import FileSpec

    repos = [path] if path.name.startswith("models--") else sorted(path.glob("models--*"))
    for repo in repos:
        repo_name = repo.name.split("--")[-1]
        seen_blobs: set[Path] = set()
        found = sorted(p for p in (repo / "snapshots").glob("*/**/*.gguf"))
        for candidate in _from_files(found, "huggingface", skipped):
            specs = []
            for spec in candidate.files:
                blob = spec.path.resolve()
                expected = f"sha256:{blob.name}" if _SHA256_HEX.fullmatch(blob.name) else None
                specs.append(FileSpec(spec.path, spec.path.name, spec.role, expected))
            primary = specs[0].path.resolve()
            if primary in seen_blobs:
                continue  # the same file in another revision
            seen_blobs.add(primary)
            yield Candidate(candidate.model_id, f"{repo_name}/{candidate.name}", tuple(specs),
                            candidate.source, "huggingface")  # fmt: skip


def _from_ollama(path: Path, skipped: list[ImportSkip]) -> Iterator[Candidate]:
    """``manifests/<registry>/<namespace>/<model>/<tag>`` name layers in ``blobs/``; the
    model layer is a GGUF file, named by its SHA-256."""
    from ._store import FileSpec

    for manifest in sorted(p for p in (path / "manifests").rglob("*") if p.is_file()):
        parts = manifest.relative_to(path / "manifests").parts
        if len(parts) < 3:
            continue
        namespace, model, tag = parts[-3], parts[-2], parts[-1]
        name = f"{model}:{tag}" if namespace == "library" else f"{namespace}/{model}:{tag}"
        try:
            layers = json.loads(manifest.read_text(encoding="utf-8"))["layers"]
        except (OSError, ValueError, KeyError, TypeError) as error:
            skipped.append(ImportSkip(str(manifest), f"unreadable Ollama manifest: {error}"))
            continue
        if not isinstance(layers, list) or not all(isinstance(x, dict) for x in layers):
            reason = "unreadable Ollama manifest: 'layers' is not a list of objects"
            skipped.append(ImportSkip(str(manifest), reason))
            continue
        specs: list[FileSpec] = []
        base_id = derive_model_id(name.replace("/", "-"))
        for layer in layers:
            media_type = layer.get("mediaType")
            if media_type not in (_OLLAMA_MODEL, _OLLAMA_PROJECTOR):
                continue
            digest = str(layer.get("digest", ""))
            blob = path / "blobs" / digest.replace(":", "-")
            if not blob.is_file():
                skipped.append(ImportSkip(str(manifest), f"blob {digest} is missing"))
                specs = []
                break
            is_model = media_type == _OLLAMA_MODEL
            rel_path = f"{base_id}.gguf" if is_model else f"{base_id}.mmproj.gguf"
            specs.append(FileSpec(blob, rel_path, "model" if is_model else "projector", digest))
        if specs and any(spec.role == "model" for spec in specs):
            yield Candidate(base_id, name, tuple(specs), str(manifest), "ollama")
