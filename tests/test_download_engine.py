"""The download engine through the Registry (`pull`, `pull_sync`, `downloader`) against a
private nginx and a real store: what lands in the store and on disk, the events in order, one
job per model, the concurrency limit, pause, resume, cancel, the network policy, the lock
another process holds, a record a dead process left, the early space check, archives, the
async event iterator, and the file:// and user-registered strategies."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import io
import json
import stat
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import numpy as np
import pytest
from tests.cli_helpers import run_cli
from tests.disks import small_tmpfs
from tests.gguf_py_files import make_gguf
from tests.servers.http_server import HTTPTestServer
from tests.servers.nginx import PRIVATE_PASSWORD, Kind, NginxRequest, NginxServer

import iris_models.download._engine as engine
from iris_models import Registry
from iris_models.download import (
    Cancelled,
    Completed,
    DownloadEvent,
    Failed,
    FileResult,
    Paused,
    Progress,
    ProgressEvent,
    Queued,
    Resumed,
    Started,
    TransferRequest,
    register_strategy,
)
from iris_models.download import _strategies as strategies
from iris_models.download._archive import ArchiveError
from iris_models.errors import (
    DownloadError,
    DownloadPaused,
    InsufficientSpaceError,
    IntegrityError,
    NetworkError,
)
from iris_models.store import CachePolicy, LifecycleState

S = LifecycleState
KIB = 1024
MIB = 1024 * KIB
GUARD_S = 120.0
"""Only so that a download that never ends fails the test instead of hanging the suite."""


@pytest.fixture(autouse=True)
def _allow_http(clean_network_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRIS_MODELS_ALLOW_HTTP", "1")


# --- helpers -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Served:
    """A model file nginx serves: its catalog id, its name under nginx's root, its bytes."""

    model_id: str
    name: str
    body: bytes
    url: str

    @property
    def hex(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def digest(self) -> str:
        return f"sha256:{self.hex}"


def gguf_body(folder: Path, name: str, size_bytes: int = 0) -> bytes:
    """A valid GGUF file of about `size_bytes` (one float32 tensor of that size), named
    `name` so that every model has its own bytes and digest."""
    rows = max(size_bytes // 32, 1)
    return make_gguf(folder / f"{name}.gguf", name, rows=rows).read_bytes()


def serve_model(
    nginx: NginxServer,
    folder: Path,
    model_id: str,
    *,
    size_bytes: int = 0,
    kind: Kind = "files",
) -> Served:
    body = gguf_body(folder, model_id, size_bytes)
    name = f"{model_id}.gguf"
    nginx.put(name, body)
    return Served(model_id, name, body, nginx.url(name, kind))


def model_entry(
    model_id: str, url: str, body: bytes, *, digest: str | None = "right"
) -> dict[str, Any]:
    """A catalog entry with one file; `digest` "right" gives the body's, None none, anything
    else is used as given."""
    entry: dict[str, Any] = {
        "id": model_id,
        "name": model_id.replace("-", " ").title(),
        "type": "llm",
        "downloadUrl": url,
        "fileSize": len(body),
        "deviceRequirements": {"minRAM": 1 << 30},
    }
    if digest == "right":
        entry["sha256"] = hashlib.sha256(body).hexdigest()
    elif digest is not None:
        entry["sha256"] = digest
    return entry


def served_entry(served: Served, **options: Any) -> dict[str, Any]:
    return model_entry(served.model_id, served.url, served.body, **options)


def write_catalog(path: Path, entries: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps({"version": "1.0", "models": {"llm": entries}}), encoding="utf-8")
    return path


@pytest.fixture
def make_registry(tmp_path: Path) -> Iterator[Callable[..., Registry]]:
    """``make_registry(entry, ...)``: a Registry over a store under tmp_path (or `store`) with
    a catalog of these entries; closed after the test."""
    made: list[Registry] = []

    def make(*entries: dict[str, Any], store: Path | None = None) -> Registry:
        catalog = write_catalog(tmp_path / f"catalog-{len(made)}.json", list(entries))
        registry = Registry(store or tmp_path / "store", catalogs=[str(catalog)])
        made.append(registry)
        return registry

    yield make
    for registry in made:
        registry.close()


def kinds(events: list[DownloadEvent]) -> list[str]:
    """Event kinds, a run of progress events shown once."""
    shown: list[str] = []
    for event in events:
        if not (event.kind == "progress" and shown and shown[-1] == "progress"):
            shown.append(event.kind)
    return shown


E = TypeVar("E", bound=DownloadEvent)


def only(events: list[DownloadEvent], kind: type[E]) -> list[E]:
    return [event for event in events if isinstance(event, kind)]


def last(events: list[DownloadEvent], kind: type[E]) -> E:
    """The last event, which must be a `kind`."""
    event = events[-1]
    assert isinstance(event, kind), f"the last event is {event!r}"
    return event


def body_requests(nginx: NginxServer, name: str, *, at_least: int = 0) -> list[NginxRequest]:
    """Requests for the file's bytes (not the one-byte probe that learns its size)."""
    entries = nginx.requests(name, at_least=at_least)
    return [entry for entry in entries if entry.range != "bytes=0-0"]


def assert_installed(registry: Registry, model_id: str, body: bytes) -> None:
    """READY with exactly these bytes, their digest recorded, and no download state left."""
    store = registry.store
    model = store.get(model_id)
    assert model.state is S.READY
    assert model.path is not None
    assert model.path.read_bytes() == body
    assert model.files[0].sha256 == f"sha256:{hashlib.sha256(body).hexdigest()}"
    assert not store.download_dir(model_id).exists()
    assert store.saved_downloads() == []


def pause_partway(registry: Registry, model_id: str, after_bytes: int) -> list[DownloadEvent]:
    """Pulls `model_id` and pauses it once `after_bytes` are in; the events."""
    events: list[DownloadEvent] = []

    def pause_when_started(event: DownloadEvent) -> None:
        events.append(event)
        if isinstance(event, ProgressEvent) and event.bytes_done >= after_bytes:
            registry.downloader.pause(model_id)

    with pytest.raises(DownloadPaused) as paused:
        registry.pull_sync(model_id, on_event=pause_when_started)
    assert paused.value.reason == "paused"
    return events


async def guarded(awaitable: Any) -> Any:
    return await asyncio.wait_for(awaitable, GUARD_S)


# --- one pull ------------------------------------------------------------------------------------


def test_pull_sync_installs_the_served_bytes_verified_with_events_in_order(
    nginx: NginxServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    served = serve_model(nginx, tmp_path, "tiny-a", size_bytes=256 * KIB)
    registry = make_registry(served_entry(served))
    events: list[DownloadEvent] = []

    model = registry.pull_sync("tiny-a", on_event=events.append)

    assert model.state is S.READY
    assert model.files[0].sha256 == served.digest
    assert_installed(registry, "tiny-a", served.body)
    assert kinds(events) == ["queued", "started", "progress", "verifying", "completed"]
    assert {event.model_id for event in events} == {"tiny-a"}
    completed = last(events, Completed)
    assert completed.digest_source == "catalog"
    assert completed.sha256 == served.digest
    assert completed.path == str(model.path)
    assert completed.size_bytes == len(served.body)
    assert completed.fetched_bytes == len(served.body)
    progress = only(events, ProgressEvent)
    assert [p.bytes_done for p in progress] == sorted(p.bytes_done for p in progress)
    assert progress[-1].bytes_done == len(served.body)
    assert only(events, Started)[0].total_bytes == len(served.body)


def test_a_url_with_a_user_and_password_logs_in_on_every_request(
    nginx: NginxServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    """/private/ answers 401 without HTTP Basic: the probe and every ranged request carry
    the URL's credentials (percent-decoded), on our socket path as on httpx's."""
    served = serve_model(nginx, tmp_path, "tiny-a", size_bytes=4 * MIB)
    url = nginx.credentialed_url(served.name)
    registry = make_registry(model_entry("tiny-a", url, served.body))

    model = registry.pull_sync("tiny-a", connections=4)

    assert model.state is S.READY
    assert_installed(registry, "tiny-a", served.body)
    asked = nginx.requests(f"/private/{served.name}", at_least=2)
    assert len(asked) >= 2  # the probe and at least one transfer
    assert {request.status for request in asked} <= {200, 206}
    # The password never reaches the store: not the model's source, not a saved download
    # (written while the transfer ran), not the database's journal.
    assert registry.store.get("tiny-a").source == url.replace(
        f":{quote(PRIVATE_PASSWORD, safe='')}@", ":***@"
    )
    for secret in (PRIVATE_PASSWORD, quote(PRIVATE_PASSWORD, safe="")):
        for database in registry.store.root.glob("store.db*"):
            assert secret.encode() not in database.read_bytes(), database.name


@pytest.mark.parametrize("password", [None, "wrong p@ss"])
def test_a_refused_login_says_401_and_never_shows_the_password(
    password: str | None,
    nginx: NginxServer,
    tmp_path: Path,
    make_registry: Callable[..., Registry],
) -> None:
    served = serve_model(nginx, tmp_path, "tiny-a")
    url = nginx.url(served.name, "private")
    if password is not None:
        url = url.replace("://", f"://iris:{quote(password, safe='')}@", 1)
    registry = make_registry(model_entry("tiny-a", url, served.body))

    with pytest.raises(NetworkError) as caught:
        registry.pull_sync("tiny-a")

    message = str(caught.value)
    assert "401" in message
    assert "wrong" not in message
    assert "p%40ss" not in message
    assert "wrong" not in str(caught.value.url)
    if password is not None:
        assert "iris:***@" in message
        assert "the user and password in the URL were refused" in message
        assert caught.value.url == url.replace(f":{quote(password, safe='')}@", ":***@")


@pytest.mark.parametrize("name", ["../../escape.gguf", "sub/x.gguf", ".hidden.gguf", "a\x00.gguf"])
def test_a_hand_built_descriptor_with_a_file_name_outside_its_folder_is_refused(
    name: str, nginx: NginxServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    """The catalog refuses such names; a descriptor built in code never met that check, and
    the name would become the part file's path."""
    served = serve_model(nginx, tmp_path, "tiny-a")
    registry = make_registry(served_entry(served))
    model = registry.get("tiny-a")
    forged = dataclasses.replace(model, files=(dataclasses.replace(model.files[0], name=name),))

    with pytest.raises(ValueError, match="is refused: it must be a plain name"):
        asyncio.run(registry.downloader.pull(forged))

    assert registry.store.find("tiny-a") is None
    assert nginx.requests(served.name) == []
    assert not any(path.name.endswith(".part") for path in tmp_path.rglob("*"))


def test_a_listener_that_raises_does_not_break_the_download(
    nginx: NginxServer,
    tmp_path: Path,
    make_registry: Callable[..., Registry],
    caplog: pytest.LogCaptureFixture,
) -> None:
    served = serve_model(nginx, tmp_path, "tiny-a", size_bytes=64 * KIB)
    registry = make_registry(served_entry(served))
    seen: list[DownloadEvent] = []

    def broken(event: DownloadEvent) -> None:
        seen.append(event)
        raise RuntimeError("a bug in the app's listener")

    registry.downloader.add_listener(broken)
    registry.pull_sync("tiny-a")
    assert_installed(registry, "tiny-a", served.body)
    assert kinds(seen)[-1] == "completed"  # it kept receiving every event
    assert "listener failed" in caplog.text


def test_pulling_a_ready_model_again_returns_it_without_touching_the_network(
    nginx: NginxServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    served = serve_model(nginx, tmp_path, "tiny-a")
    registry = make_registry(served_entry(served))
    first = registry.pull_sync("tiny-a")
    nginx.stop()  # any request now would fail
    events: list[DownloadEvent] = []

    again = registry.pull_sync("tiny-a", on_event=events.append)

    assert again.state is S.READY
    assert again.path == first.path
    assert events == []
    assert_installed(registry, "tiny-a", served.body)


# --- digests -------------------------------------------------------------------------------------


def test_a_model_no_digest_vouches_for_is_refused_and_not_installed(
    nginx: NginxServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    served = serve_model(nginx, tmp_path, "tiny-a")
    registry = make_registry(served_entry(served, digest=None))

    with pytest.raises(IntegrityError, match="no digest is known") as refused:
        registry.pull_sync("tiny-a")

    assert "neither the catalog nor the server" in str(refused.value)
    assert "allow an unverified download" in str(refused.value)
    record = registry.store.get("tiny-a")
    assert record.state is S.ERROR
    assert not (registry.store.models_dir / "tiny-a").exists()
    assert body_requests(nginx, served.name) == []  # refused before any byte was fetched


def test_allow_unverified_installs_a_model_without_a_digest(
    nginx: NginxServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    served = serve_model(nginx, tmp_path, "tiny-a")
    registry = make_registry(served_entry(served, digest=None))
    events: list[DownloadEvent] = []

    registry.pull_sync("tiny-a", allow_unverified=True, on_event=events.append)

    assert_installed(registry, "tiny-a", served.body)
    completed = last(events, Completed)
    assert completed.digest_source == "none"
    assert completed.sha256 == served.digest  # still measured, only not vouched for


def test_the_servers_linked_etag_vouches_for_a_model_without_a_catalog_digest(
    server: HTTPTestServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    body = gguf_body(tmp_path, "tiny-a")
    linked = f'"{hashlib.sha256(body).hexdigest()}"'
    url = server.serve("/tiny-a.gguf", body, etag='"v1"', headers={"X-Linked-Etag": linked})
    registry = make_registry(model_entry("tiny-a", url, body, digest=None))
    events: list[DownloadEvent] = []

    registry.pull_sync("tiny-a", on_event=events.append)

    assert_installed(registry, "tiny-a", body)
    assert last(events, Completed).digest_source == "server"


def test_a_wrong_server_linked_etag_is_refused(
    server: HTTPTestServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    body = gguf_body(tmp_path, "tiny-a")
    linked = f'"{hashlib.sha256(b"another file").hexdigest()}"'
    url = server.serve("/tiny-a.gguf", body, etag='"v1"', headers={"X-Linked-Etag": linked})
    registry = make_registry(model_entry("tiny-a", url, body, digest=None))

    with pytest.raises(IntegrityError):
        registry.pull_sync("tiny-a")

    assert registry.store.get("tiny-a").state is S.ERROR
    assert not registry.store.download_dir("tiny-a").exists()


def test_a_wrong_catalog_digest_fails_after_one_refetch_and_leaves_no_part_files(
    nginx: NginxServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    served = serve_model(nginx, tmp_path, "tiny-a", size_bytes=64 * KIB)
    wrong = hashlib.sha256(b"not the file").hexdigest()
    registry = make_registry(served_entry(served, digest=wrong))
    events: list[DownloadEvent] = []

    with pytest.raises(IntegrityError):
        registry.pull_sync("tiny-a", on_event=events.append)

    fetched_whole = [r for r in body_requests(nginx, served.name, at_least=4) if r.status == 206]
    assert len(fetched_whole) == 2  # the first fetch and one fetch again, then it gives up
    assert all(r.body_bytes_sent == len(served.body) for r in fetched_whole)
    store = registry.store
    record = store.get("tiny-a")
    assert record.state is S.ERROR
    assert "DigestMismatchError" in (record.state_reason or "")
    assert not store.download_dir("tiny-a").exists()
    assert store.saved_downloads() == []
    assert isinstance(last(events, Failed).error, IntegrityError)


def test_a_model_of_several_files_installs_each_with_its_role_and_pieces_checked(
    nginx: NginxServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    weights = serve_model(nginx, tmp_path, "tiny-a", size_bytes=256 * KIB)
    projector = serve_model(nginx, tmp_path, "mmproj-tiny-a", size_bytes=64 * KIB)
    piece = 64 * KIB
    pieces = [
        hashlib.sha256(weights.body[start : start + piece]).hexdigest()
        for start in range(0, len(weights.body), piece)
    ]
    files = [
        {
            "name": weights.name,
            "url": weights.url,
            "size": len(weights.body),
            "sha256": weights.hex,
            "role": "model",
            "pieces": {"size": piece, "sha256": pieces},
        },
        {
            "name": projector.name,
            "url": projector.url,
            "size": len(projector.body),
            "sha256": projector.hex,
            "role": "projector",
        },
    ]
    registry = make_registry(
        {
            "id": "tiny-a",
            "name": "Tiny A",
            "type": "llm",
            "files": files,
            "deviceRequirements": {"minRAM": 1 << 30},
        }
    )
    events: list[DownloadEvent] = []

    model = registry.pull_sync("tiny-a", on_event=events.append)

    assert model.state is S.READY
    by_name = {item.rel_path: item for item in model.files}
    assert {name: item.role for name, item in by_name.items()} == {
        weights.name: "model",
        projector.name: "projector",
    }
    assert by_name[weights.name].path.read_bytes() == weights.body
    assert by_name[projector.name].path.read_bytes() == projector.body
    assert by_name[projector.name].sha256 == projector.digest
    assert model.path == by_name[weights.name].path
    total = len(weights.body) + len(projector.body)
    [started] = only(events, Started)
    assert (started.files, started.total_bytes) == (2, total)
    progress = [event.bytes_done for event in only(events, ProgressEvent)]
    assert progress == sorted(progress)  # of the whole model, across its files
    assert progress[-1] == total
    completed = last(events, Completed)
    assert completed.size_bytes == total
    assert completed.sha256 == weights.digest  # the model file's, not the projector's
    assert not registry.store.download_dir("tiny-a").exists()


# --- jobs: joining, the concurrency limit -------------------------------------------------------


def test_two_concurrent_pulls_of_one_model_share_one_download(
    nginx_factory: Callable[..., NginxServer],
    tmp_path: Path,
    make_registry: Callable[..., Registry],
) -> None:
    nginx = nginx_factory(rate_bytes_per_s=512 * KIB)
    served = serve_model(nginx, tmp_path, "tiny-a", size_bytes=512 * KIB, kind="slow")
    registry = make_registry(served_entry(served))
    seen: list[DownloadEvent] = []
    registry.downloader.add_listener(seen.append)
    joined: list[DownloadEvent] = []

    async def both() -> list[Any]:
        first = asyncio.ensure_future(registry.pull("tiny-a"))
        await asyncio.sleep(0.2)  # the first job is under way when the second asks
        second = registry.pull("tiny-a", on_event=joined.append)
        return list(await guarded(asyncio.gather(first, second)))

    first, second = asyncio.run(both())

    assert first.state is second.state is S.READY
    assert first.path == second.path
    assert_installed(registry, "tiny-a", served.body)
    assert len(only(seen, Started)) == 1
    assert len(only(seen, Completed)) == 1
    assert isinstance(joined[-1], Completed)  # the joiner hears the shared job's events
    probes = [r for r in nginx.requests(served.name, at_least=2) if r.range == "bytes=0-0"]
    assert len(probes) == 1
    assert sum(r.body_bytes_sent for r in body_requests(nginx, served.name)) == len(served.body)


def test_two_pulls_started_together_share_one_download(
    nginx: NginxServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    served = serve_model(nginx, tmp_path, "tiny-a", size_bytes=64 * KIB)
    registry = make_registry(served_entry(served))
    seen: list[DownloadEvent] = []
    registry.downloader.add_listener(seen.append)

    async def both() -> list[Any]:
        return list(await guarded(asyncio.gather(registry.pull("tiny-a"), registry.pull("tiny-a"))))

    first, second = asyncio.run(both())

    assert first.state is second.state is S.READY
    assert_installed(registry, "tiny-a", served.body)
    assert len(only(seen, Started)) == 1
    assert len(body_requests(nginx, served.name, at_least=2)) == 1


def active_over_time(events: list[DownloadEvent]) -> list[int]:
    """How many downloads were between Started and Completed after each event."""
    active: set[str] = set()
    counts = []
    for event in events:
        if event.kind == "started":
            active.add(event.model_id)
        elif event.kind in ("completed", "failed", "paused", "cancelled"):
            active.discard(event.model_id)
        counts.append(len(active))
    return counts


def three_slow_models(
    nginx_factory: Callable[..., NginxServer],
    tmp_path: Path,
    make_registry: Callable[..., Registry],
) -> tuple[Registry, list[Served]]:
    # At 32 KiB/s each 64 KiB file takes nginx at least about 1.9 s to send.
    nginx = nginx_factory(rate_bytes_per_s=32 * KIB)
    models = [
        serve_model(nginx, tmp_path, f"slow-{n}", size_bytes=64 * KIB, kind="slow")
        for n in range(3)
    ]
    return make_registry(*(served_entry(served) for served in models)), models


def pull_all(registry: Registry, model_ids: list[str]) -> list[Any]:
    async def run() -> list[Any]:
        return list(await guarded(asyncio.gather(*(registry.pull(i) for i in model_ids))))

    return asyncio.run(run())


def test_max_concurrent_one_runs_the_downloads_one_after_another(
    nginx_factory: Callable[..., NginxServer],
    tmp_path: Path,
    make_registry: Callable[..., Registry],
) -> None:
    registry, models = three_slow_models(nginx_factory, tmp_path, make_registry)
    registry.downloader.max_concurrent = 1
    seen: list[DownloadEvent] = []
    registry.downloader.add_listener(seen.append)

    installed = pull_all(registry, [m.model_id for m in models])

    assert [model.state for model in installed] == [S.READY] * 3
    for served in models:
        assert_installed(registry, served.model_id, served.body)
    assert max(active_over_time(seen)) == 1
    bounds = [(e.kind, e.model_id) for e in seen if e.kind in ("started", "completed")]
    assert [kind for kind, _ in bounds] == ["started", "completed"] * 3
    assert [model_id for _, model_id in bounds[::2]] == [model_id for _, model_id in bounds[1::2]]
    queued = only(seen, Queued)
    assert sorted(event.position for event in queued) == [0, 1, 2]


def test_max_concurrent_two_never_runs_more_than_two_downloads(
    nginx_factory: Callable[..., NginxServer],
    tmp_path: Path,
    make_registry: Callable[..., Registry],
) -> None:
    registry, models = three_slow_models(nginx_factory, tmp_path, make_registry)
    registry.downloader.max_concurrent = 2
    seen: list[DownloadEvent] = []
    registry.downloader.add_listener(seen.append)

    installed = pull_all(registry, [m.model_id for m in models])

    assert [model.state for model in installed] == [S.READY] * 3
    assert max(active_over_time(seen)) == 2
    starts = [i for i, e in enumerate(seen) if e.kind == "started"]
    first_completed = next(i for i, e in enumerate(seen) if e.kind == "completed")
    assert starts[1] < first_completed < starts[2]  # the third waited for a free slot


# --- pause, resume, cancel -----------------------------------------------------------------------


@pytest.fixture
def slow_model(
    nginx_factory: Callable[..., NginxServer], tmp_path: Path
) -> tuple[NginxServer, Served]:
    """A 2 MiB model on /slow/ at 512 KiB/s: about 4 s to fetch whole."""
    nginx = nginx_factory(rate_bytes_per_s=512 * KIB)
    return nginx, serve_model(nginx, tmp_path, "tiny-a", size_bytes=2 * MIB, kind="slow")


def test_pause_keeps_the_bytes_and_pulling_again_fetches_only_the_rest(
    slow_model: tuple[NginxServer, Served],
    make_registry: Callable[..., Registry],
    capsys: pytest.CaptureFixture[str],
) -> None:
    nginx, served = slow_model
    registry = make_registry(served_entry(served))
    store = registry.store

    events = pause_partway(registry, "tiny-a", 128 * KIB)

    paused = last(events, Paused)
    assert store.get("tiny-a").state is S.PAUSED
    [saved] = store.saved_downloads()
    assert saved.model_id == "tiny-a"
    assert saved.rel_path == served.name
    assert saved.total_bytes == len(served.body)
    assert 128 * KIB <= saved.bytes_done < len(served.body)
    assert paused.bytes_done == saved.bytes_done
    assert (store.download_dir("tiny-a") / f"{served.name}.part").is_file()
    status, out, _ = run_cli(capsys, "downloads", "--store", str(store.root), "--json")
    assert status == 0
    [row] = json.loads(out)
    assert (row["id"], row["state"]) == ("tiny-a", "paused")
    assert (row["bytes_done"], row["total_bytes"]) == (saved.bytes_done, len(served.body))

    resumed: list[DownloadEvent] = []
    fast = nginx.url(served.name)  # the same file without the rate limit: a quick resume
    model = registry.pull_sync("tiny-a", mirrors=[fast], on_event=resumed.append)

    assert model.state is S.READY
    assert_installed(registry, "tiny-a", served.body)
    assert kinds(resumed)[:3] == ["queued", "resumed", "started"]
    assert only(resumed, Started)[0].resumed_bytes == saved.bytes_done
    completed = last(resumed, Completed)
    assert completed.fetched_bytes == len(served.body) - saved.bytes_done
    [rest] = body_requests(nginx, f"/files/{served.name}", at_least=2)
    assert rest.range == f"bytes={saved.bytes_done}-{len(served.body) - 1}"
    assert rest.if_range is not None  # only the same version of the file may be resumed


def test_cancel_forgets_the_download_and_deletes_its_part_files(
    slow_model: tuple[NginxServer, Served], make_registry: Callable[..., Registry]
) -> None:
    _, served = slow_model
    registry = make_registry(served_entry(served))
    events: list[DownloadEvent] = []

    def cancel_when_started(event: DownloadEvent) -> None:
        events.append(event)
        if isinstance(event, ProgressEvent) and event.bytes_done > 0:
            registry.downloader.cancel("tiny-a")

    with pytest.raises(DownloadPaused) as stopped:
        registry.pull_sync("tiny-a", on_event=cancel_when_started)

    assert stopped.value.reason == "cancelled"
    assert last(events, Cancelled).kept_part_files is False
    store = registry.store
    assert store.find("tiny-a") is None
    assert not store.download_dir("tiny-a").exists()
    assert store.saved_downloads() == []
    assert registry.downloader.running() == []


def test_cancel_keeping_part_files_leaves_a_paused_download_to_resume(
    slow_model: tuple[NginxServer, Served], make_registry: Callable[..., Registry]
) -> None:
    nginx, served = slow_model
    registry = make_registry(served_entry(served))
    events: list[DownloadEvent] = []

    def cancel_when_started(event: DownloadEvent) -> None:
        events.append(event)
        if isinstance(event, ProgressEvent) and event.bytes_done > 0:
            registry.downloader.cancel("tiny-a", keep_part_files=True)

    with pytest.raises(DownloadPaused) as stopped:
        registry.pull_sync("tiny-a", on_event=cancel_when_started)

    assert stopped.value.reason == "cancelled"
    assert last(events, Cancelled).kept_part_files is True
    store = registry.store
    assert store.get("tiny-a").state is S.PAUSED
    assert (store.download_dir("tiny-a") / f"{served.name}.part").is_file()
    [saved] = store.saved_downloads()
    assert saved.bytes_done > 0

    registry.pull_sync("tiny-a", mirrors=[nginx.url(served.name)])

    assert_installed(registry, "tiny-a", served.body)


def test_pause_and_cancel_of_a_model_not_downloading_change_nothing(
    nginx: NginxServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    served = serve_model(nginx, tmp_path, "tiny-a")
    registry = make_registry(served_entry(served))
    registry.pull_sync("tiny-a")

    assert registry.downloader.pause("tiny-a") is False
    assert registry.downloader.cancel("tiny-a") is False
    assert registry.downloader.pause_all() == 0
    assert_installed(registry, "tiny-a", served.body)


def queued_behind_a_slow_download(
    nginx_factory: Callable[..., NginxServer],
    tmp_path: Path,
    make_registry: Callable[..., Registry],
    stop: Callable[[Registry], object],
) -> tuple[Registry, list[DownloadEvent], list[Any]]:
    """Pulls slow-0 and slow-1 with one slot, and calls `stop` once slow-1 is queued."""
    registry, _ = three_slow_models(nginx_factory, tmp_path, make_registry)
    registry.downloader.max_concurrent = 1
    seen: list[DownloadEvent] = []
    registry.downloader.add_listener(seen.append)

    async def scenario() -> list[Any]:
        first = asyncio.ensure_future(registry.pull("slow-0"))
        await asyncio.sleep(0)  # slow-0 takes the slot
        second = asyncio.ensure_future(registry.pull("slow-1"))
        await asyncio.sleep(0)
        assert [e.kind for e in seen if e.model_id == "slow-1"] == ["queued"]
        stop(registry)
        return list(await guarded(asyncio.gather(first, second, return_exceptions=True)))

    return registry, seen, asyncio.run(scenario())


def test_pausing_a_queued_download_stops_it_at_once_and_leaves_it_paused(
    nginx_factory: Callable[..., NginxServer],
    tmp_path: Path,
    make_registry: Callable[..., Registry],
) -> None:
    registry, seen, (first, second) = queued_behind_a_slow_download(
        nginx_factory, tmp_path, make_registry, lambda r: r.downloader.pause("slow-1")
    )

    assert first.state is S.READY
    assert isinstance(second, DownloadPaused)
    assert second.reason == "paused"
    order = [(e.kind, e.model_id) for e in seen if e.kind in ("paused", "completed")]
    assert order == [("paused", "slow-1"), ("completed", "slow-0")]
    assert registry.store.get("slow-1").state is S.PAUSED


def test_cancelling_a_queued_download_forgets_it(
    nginx_factory: Callable[..., NginxServer],
    tmp_path: Path,
    make_registry: Callable[..., Registry],
) -> None:
    registry, seen, (first, second) = queued_behind_a_slow_download(
        nginx_factory, tmp_path, make_registry, lambda r: r.downloader.cancel("slow-1")
    )

    assert first.state is S.READY
    assert isinstance(second, DownloadPaused)
    assert second.reason == "cancelled"
    assert [e.kind for e in seen if e.model_id == "slow-1"][-1] == "cancelled"
    assert registry.store.find("slow-1") is None


# --- what holds a download: the network policy, another process ----------------------------------


class Switch:
    """A NetworkPolicy that says no until it is flipped; counts how often it was asked."""

    def __init__(self) -> None:
        self.allowed = False
        self.asked = 0

    def allows_transfers(self) -> bool:
        self.asked += 1
        return self.allowed


class AsyncSwitch(Switch):
    """The same, answering from a coroutine (a policy that has to ask the OS)."""

    async def allows_transfers(self) -> bool:  # type: ignore[override]
        await asyncio.sleep(0)
        return super().allows_transfers()


@pytest.mark.parametrize("policy_type", [Switch, AsyncSwitch])
def test_a_network_policy_holds_the_download_until_it_allows_transfers(
    policy_type: type[Switch],
    nginx: NginxServer,
    tmp_path: Path,
    make_registry: Callable[..., Registry],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "POLICY_POLL_S", 0.05)
    served = serve_model(nginx, tmp_path, "tiny-a")
    registry = make_registry(served_entry(served))
    policy = policy_type()
    registry.downloader.policy = policy
    events: list[DownloadEvent] = []

    async def scenario() -> Any:
        held = asyncio.Event()

        def on_event(event: DownloadEvent) -> None:
            events.append(event)
            if isinstance(event, Queued) and "policy" in event.reason:
                held.set()

        pull = asyncio.ensure_future(registry.pull("tiny-a", on_event=on_event))
        await guarded(held.wait())
        asked = policy.asked
        while policy.asked < asked + 3:  # still asked, and still saying no
            await asyncio.sleep(0.01)
        assert not pull.done()
        assert registry.store.get("tiny-a").state is S.QUEUED
        assert nginx.requests(served.name) == []
        policy.allowed = True
        return await guarded(pull)

    model = asyncio.run(scenario())

    assert model.state is S.READY
    assert_installed(registry, "tiny-a", served.body)
    held_events = [e for e in only(events, Queued) if "policy" in e.reason]
    assert len(held_events) == 1  # announced once, not once per poll
    assert events.index(held_events[0]) < events.index(only(events, Started)[0])


LOCK_HOLDER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from iris_models.store._locks import ModelLock

    lock = ModelLock(Path(sys.argv[1]), sys.argv[2])
    assert lock.acquire(exclusive=True, wait_s=30)
    print("locked", flush=True)
    sys.stdin.read()  # hold the lock until the test closes our stdin
    """
)


def test_a_model_another_process_holds_is_not_fetched_until_that_process_exits(
    nginx: NginxServer,
    tmp_path: Path,
    make_registry: Callable[..., Registry],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(engine, "LOCK_POLL_S", 0.05)
    served = serve_model(nginx, tmp_path, "tiny-a")
    registry = make_registry(served_entry(served))
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(registry.store.root), "tiny-a"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None
    assert holder.stdin is not None
    events: list[DownloadEvent] = []
    try:
        assert holder.stdout.readline() == "locked\n"

        async def scenario() -> Any:
            waiting = asyncio.Event()

            def on_event(event: DownloadEvent) -> None:
                events.append(event)
                if isinstance(event, Queued) and "another process" in event.reason:
                    waiting.set()

            pull = asyncio.ensure_future(registry.pull("tiny-a", on_event=on_event))
            await guarded(waiting.wait())
            await asyncio.sleep(0.3)  # several polls of the lock, all refused
            assert not pull.done()
            assert nginx.requests(served.name) == []
            assert holder.stdin is not None
            holder.stdin.close()
            await asyncio.to_thread(holder.wait, GUARD_S)
            return await guarded(pull)

        model = asyncio.run(scenario())
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait()
        holder.stdout.close()
        if not holder.stdin.closed:
            holder.stdin.close()

    assert holder.returncode == 0
    assert model.state is S.READY
    assert_installed(registry, "tiny-a", served.body)
    assert kinds(events)[-4:] == ["started", "progress", "verifying", "completed"]


def test_a_downloading_record_left_by_a_dead_process_is_taken_over_and_resumed(
    slow_model: tuple[NginxServer, Served], make_registry: Callable[..., Registry]
) -> None:
    nginx, served = slow_model
    registry = make_registry(served_entry(served))
    pause_partway(registry, "tiny-a", 128 * KIB)
    [saved] = registry.store.saved_downloads()
    # As a process that died mid-transfer leaves it: DOWNLOADING, no lock held, state saved.
    registry.store.transition("tiny-a", S.DOWNLOADING, reason="a process that then died")
    events: list[DownloadEvent] = []

    model = registry.pull_sync("tiny-a", mirrors=[nginx.url(served.name)], on_event=events.append)

    assert model.state is S.READY
    assert_installed(registry, "tiny-a", served.body)
    assert only(events, Resumed)[0].bytes_done == saved.bytes_done
    assert last(events, Completed).fetched_bytes == len(served.body) - saved.bytes_done


# --- the early space check -----------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 2 MiB tmpfs (needs root: skips otherwise), unmounted after the test."""
    with small_tmpfs(tmp_path / "small-disk", "2m") as mount_point:
        yield mount_point


def test_a_disk_too_small_fails_before_any_byte_is_fetched(
    nginx: NginxServer, tmp_path: Path, small_disk: Path
) -> None:
    served = serve_model(nginx, tmp_path, "big-a", size_bytes=4 * MIB)
    catalog = write_catalog(tmp_path / "catalog.json", [served_entry(served)])
    events: list[DownloadEvent] = []
    with Registry(small_disk / "store", catalogs=[str(catalog)]) as registry:
        with pytest.raises(InsufficientSpaceError):
            registry.pull_sync("big-a", on_event=events.append)
        store = registry.store
        part = store.download_dir("big-a") / f"{served.name}.part"
        assert not part.exists()
        assert store.saved_downloads() == []
        assert not (store.models_dir / "big-a").exists()
        record = store.get("big-a")
        assert not record.state.is_installed
    assert nginx.requests(served.name) == []
    assert only(events, Started) == []


def test_a_disk_too_small_is_reported_as_a_failed_download(
    nginx: NginxServer, tmp_path: Path, small_disk: Path
) -> None:
    served = serve_model(nginx, tmp_path, "big-a", size_bytes=4 * MIB)
    catalog = write_catalog(tmp_path / "catalog.json", [served_entry(served)])
    events: list[DownloadEvent] = []
    with Registry(small_disk / "store", catalogs=[str(catalog)]) as registry:
        with pytest.raises(InsufficientSpaceError):
            registry.pull_sync("big-a", on_event=events.append)
        record = registry.store.get("big-a")

    assert isinstance(last(events, Failed).error, InsufficientSpaceError)
    assert record.state is S.ERROR
    assert "InsufficientSpaceError" in (record.state_reason or "")


# --- archives ------------------------------------------------------------------------------------

README = b"Tiny A: a test model.\n"


def zip_bytes(members: list[tuple[str, bytes, int]]) -> bytes:
    """A zip of (name, bytes, unix mode with the file type) members."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, data, mode in members:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = mode << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            bundle.writestr(info, data)
    return buffer.getvalue()


def zip_writestr_bytes(members: list[tuple[str, bytes]]) -> bytes:
    """A zip as Python's ``ZipFile.writestr(name, data)`` writes it: mode 0o600 with no
    file-type bits (which zip readers take as a regular file)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, data in members:
            bundle.writestr(name, data)
    return buffer.getvalue()


def tar_gz_bytes(members: list[tuple[str, bytes, bytes]]) -> bytes:
    """A tar.gz of (name, bytes, tar type) members; a SYMTYPE member links to its bytes."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as bundle:
        for name, data, kind in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = 0o644
            if kind == tarfile.SYMTYPE:
                info.linkname = data.decode()
                bundle.addfile(info)
            else:
                info.size = len(data)
                bundle.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


REGULAR = stat.S_IFREG | 0o644


def archive_entry(model_id: str, name: str, url: str, data: bytes) -> dict[str, Any]:
    return {
        "id": model_id,
        "name": model_id,
        "type": "llm",
        "files": [
            {
                "name": name,
                "url": url,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        ],
        "deviceRequirements": {"minRAM": 1 << 30},
    }


def archive_of(kind: str, model: bytes) -> tuple[str, bytes]:
    if kind == "zip":
        members = [("tiny-a.gguf", model, REGULAR), ("README.txt", README, REGULAR)]
        return "tiny-a.zip", zip_bytes(members)
    if kind == "zip-writestr":
        return "tiny-a.zip", zip_writestr_bytes([("tiny-a.gguf", model), ("README.txt", README)])
    assert kind == "tar.gz"
    return "tiny-a.tar.gz", tar_gz_bytes(
        [("tiny-a.gguf", model, tarfile.REGTYPE), ("README.txt", README, tarfile.REGTYPE)]
    )


@pytest.mark.parametrize(
    "kind",
    [
        "zip",
        "zip-writestr",
        "tar.gz",
    ],
)
def test_an_archive_model_installs_the_files_it_holds(
    kind: str, nginx: NginxServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    model_bytes = gguf_body(tmp_path, "tiny-a")
    name, data = archive_of(kind, model_bytes)
    url = nginx.put(name, data)
    registry = make_registry(archive_entry("tiny-a", name, url, data))

    model = registry.pull_sync("tiny-a")

    assert model.state is S.READY
    roles = {item.rel_path: item.role for item in model.files}
    assert roles == {"tiny-a.gguf": "model", "README.txt": "extra"}
    folder = registry.store.models_dir / "tiny-a"
    assert (folder / "tiny-a.gguf").read_bytes() == model_bytes
    assert (folder / "README.txt").read_bytes() == README
    assert model.path == folder / "tiny-a.gguf"
    assert not registry.store.download_dir("tiny-a").exists()


def unsafe_archive(kind: str, model: bytes) -> tuple[str, bytes]:
    escape = "../../../../../../evil"
    if kind == "zip-dotdot":
        return "bad.zip", zip_bytes([("tiny-a.gguf", model, REGULAR), (escape, b"x", REGULAR)])
    if kind == "zip-symlink":
        link = stat.S_IFLNK | 0o777
        return "bad.zip", zip_bytes([("tiny-a.gguf", model, REGULAR), ("evil", b"/etc", link)])
    if kind == "tar-dotdot":
        return "bad.tar.gz", tar_gz_bytes(
            [("tiny-a.gguf", model, tarfile.REGTYPE), (escape, b"x", tarfile.REGTYPE)]
        )
    assert kind == "tar-symlink"
    return "bad.tar.gz", tar_gz_bytes(
        [("evil", b"/etc", tarfile.SYMTYPE), ("tiny-a.gguf", model, tarfile.REGTYPE)]
    )


@pytest.mark.parametrize("kind", ["zip-dotdot", "zip-symlink", "tar-dotdot", "tar-symlink"])
def test_an_archive_with_a_member_outside_its_folder_or_a_link_is_refused(
    kind: str, nginx: NginxServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    name, data = unsafe_archive(kind, gguf_body(tmp_path, "tiny-a"))
    url = nginx.put(name, data)
    registry = make_registry(archive_entry("bad", name, url, data))
    events: list[DownloadEvent] = []

    with pytest.raises(ArchiveError) as refused:
        registry.pull_sync("bad", on_event=events.append)

    assert isinstance(refused.value, DownloadError)
    assert "refused" in str(refused.value) or "outside" in str(refused.value)
    assert [p for p in tmp_path.rglob("evil") if p.parent != nginx.root] == []
    assert not (tmp_path.parent / "evil").exists()
    assert not (registry.store.models_dir / "bad").exists()
    assert registry.store.get("bad").state is not S.READY
    assert isinstance(last(events, Failed).error, ArchiveError)


def test_a_refused_archive_leaves_the_model_in_error_and_pullable_again(
    nginx: NginxServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    name, data = unsafe_archive("zip-dotdot", gguf_body(tmp_path, "tiny-a"))
    url = nginx.put(name, data)
    registry = make_registry(archive_entry("bad", name, url, data))
    with pytest.raises(ArchiveError):
        registry.pull_sync("bad")

    assert registry.store.get("bad").state is S.ERROR
    with pytest.raises(ArchiveError):  # the same refusal again, not a LifecycleError
        registry.pull_sync("bad")


def test_a_disk_that_fills_while_unpacking_keeps_the_archive_and_unpacks_it_again(
    nginx: NginxServer, tmp_path: Path, small_disk: Path
) -> None:
    """The archive (about 512 KiB) fits on the 2 MiB disk; what it unpacks to (2.5 MiB) does
    not. The pull fails with InsufficientSpaceError, not a raw OSError; the half-unpacked
    files go and the verified archive stays. With room made, the next pull unpacks it again
    without fetching a byte."""
    padding = np.random.default_rng(7).bytes(512 * KIB) + bytes(2 * MIB)
    model_bytes = gguf_body(tmp_path, "tiny-a")
    name = "tiny-a.zip"
    data = zip_bytes([("tiny-a.gguf", model_bytes, REGULAR), ("padding.bin", padding, REGULAR)])
    url = nginx.put(name, data)
    catalog = write_catalog(tmp_path / "catalog.json", [archive_entry("tiny-a", name, url, data)])
    with Registry(small_disk / "store", catalogs=[str(catalog)]) as registry:
        registry.downloader.space_buffer_bytes = 0  # the archive itself fits
        registry.store.set_policy(CachePolicy(min_free_bytes=0))
        with pytest.raises(InsufficientSpaceError) as caught:
            registry.pull_sync("tiny-a")

        message = str(caught.value)
        assert "disk is full while unpacking 'tiny-a'" in message
        assert "not fetched again" in message
        assert caught.value.bytes_needed == len(model_bytes) + len(padding)
        store = registry.store
        assert store.get("tiny-a").state is S.ERROR
        assert not (store.download_dir("tiny-a") / "unpacked").exists()
        assert (store.download_dir("tiny-a") / f"{name}.part").stat().st_size == len(data)

        remounted = subprocess.run(
            ["mount", "-o", "remount,size=8m", str(small_disk)], capture_output=True, check=False
        )
        assert remounted.returncode == 0, remounted.stderr
        model = registry.pull_sync("tiny-a")

        assert model.state is S.READY
        assert (store.models_dir / "tiny-a" / "padding.bin").read_bytes() == padding
    transfers = [r for r in nginx.requests(name, at_least=2) if r.range != "bytes=0-0"]
    assert sum(r.body_bytes_sent for r in transfers) == len(data)  # probes aside, once


# --- events as an async iterator -----------------------------------------------------------------


def test_the_event_iterator_yields_the_events_of_a_pull(
    nginx: NginxServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    served = serve_model(nginx, tmp_path, "tiny-a", size_bytes=64 * KIB)
    registry = make_registry(served_entry(served))
    from_callback: list[DownloadEvent] = []

    async def scenario() -> list[DownloadEvent]:
        collected: list[DownloadEvent] = []

        async def collect() -> None:
            async for event in registry.downloader.events():
                collected.append(event)
                if isinstance(event, Completed):
                    break

        collector = asyncio.ensure_future(collect())
        await asyncio.sleep(0)  # the collector subscribes before the pull starts
        await guarded(registry.pull("tiny-a", on_event=from_callback.append))
        await guarded(collector)
        return collected

    collected = asyncio.run(scenario())

    assert collected == from_callback
    assert kinds(collected) == ["queued", "started", "progress", "verifying", "completed"]
    assert registry.downloader._subscribers == []  # leaving the loop unsubscribed it


# --- strategies ----------------------------------------------------------------------------------


def test_a_file_url_installs_a_local_model(
    tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    source = tmp_path / "card" / "tiny a.gguf"  # a space: the URL is percent-encoded
    source.parent.mkdir()
    body = gguf_body(tmp_path, "tiny-a", 256 * KIB)
    source.write_bytes(body)
    registry = make_registry(model_entry("tiny-a", source.as_uri(), body))
    events: list[DownloadEvent] = []

    model = registry.pull_sync("tiny-a", on_event=events.append)

    assert model.state is S.READY
    assert_installed(registry, "tiny-a", body)
    assert source.read_bytes() == body  # copied, the original left where it was
    assert last(events, Completed).digest_source == "catalog"


def test_a_file_url_with_a_wrong_digest_is_refused(
    tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    source = tmp_path / "tiny-a.gguf"
    body = gguf_body(tmp_path / "made", "tiny-a")
    source.write_bytes(body)
    wrong = hashlib.sha256(b"another file").hexdigest()
    registry = make_registry(model_entry("tiny-a", source.as_uri(), body, digest=wrong))

    with pytest.raises(IntegrityError):
        registry.pull_sync("tiny-a")

    assert registry.store.get("tiny-a").state is S.ERROR
    assert not registry.store.download_dir("tiny-a").exists()


class BytesTransfer:
    """A Transfer that writes bytes it already has."""

    def __init__(self, request: TransferRequest, body: bytes) -> None:
        self.request = request
        self.body = body
        self.done = 0

    def run(self) -> FileResult:
        self.request.part_path.write_bytes(self.body)
        self.done = len(self.body)
        return FileResult(
            path=self.request.part_path,
            sha256=f"sha256:{hashlib.sha256(self.body).hexdigest()}",
            size=len(self.body),
            digest_source="catalog",
            fetched_bytes=len(self.body),
            duration_s=0.0,
            url=self.request.source.urls[0],
        )

    def pause(self) -> None:
        pass

    def cancel(self) -> None:
        pass

    def progress(self) -> Progress:
        return Progress(self.done, len(self.body), self.done, self.done, 1)


class BytesStrategy:
    def __init__(self, bodies: dict[str, bytes]) -> None:
        self.bodies = bodies
        self.requests: list[TransferRequest] = []

    def transfer(self, request: TransferRequest) -> BytesTransfer:
        self.requests.append(request)
        return BytesTransfer(request, self.bodies[request.source.urls[0]])


def test_a_registered_strategy_fetches_the_urls_of_its_scheme(
    nginx: NginxServer,
    tmp_path: Path,
    make_registry: Callable[..., Registry],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(strategies, "_STRATEGIES", dict(strategies._STRATEGIES))  # undone after
    served = serve_model(nginx, tmp_path, "tiny-a")
    custom = BytesStrategy({"test://bucket/tiny-a.gguf": served.body})
    register_strategy("test", custom)
    registry = make_registry(served_entry(served))

    # Catalogs take http(s), hf and file URLs only; a mirror may use any registered scheme.
    model = registry.pull_sync("tiny-a", mirrors=["test://bucket/tiny-a.gguf"])

    assert model.state is S.READY
    assert_installed(registry, "tiny-a", served.body)
    [request] = custom.requests
    assert request.source.sha256 == served.digest  # told what the bytes must be
    assert request.source.urls[0] == "test://bucket/tiny-a.gguf"
    assert nginx.requests() == []  # the catalog's own URL was never needed


def test_resume_downloads_picks_up_every_paused_download_of_the_store(
    nginx: NginxServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    first = serve_model(nginx, tmp_path, "tiny-a", size_bytes=256 * KIB)
    second = serve_model(nginx, tmp_path, "tiny-b", size_bytes=256 * KIB)
    registry = make_registry(served_entry(first), served_entry(second))
    for served in (first, second):  # two paused downloads, as a process that stopped leaves
        registry.store.register(served.model_id)
        registry.store.transition(served.model_id, "queued")
        registry.store.transition(served.model_id, "paused")
    assert [p.model_id for p in registry.pending_downloads()] == ["tiny-a", "tiny-b"]

    outcomes = asyncio.run(registry.resume_downloads())

    assert set(outcomes) == {"tiny-a", "tiny-b"}
    assert all(model.state is S.READY for model in outcomes.values())  # type: ignore[union-attr]
    assert registry.pending_downloads() == []
    assert_installed(registry, "tiny-b", second.body)


def test_a_model_of_two_archives_installs_the_files_of_both(
    nginx: NginxServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    model_bytes = gguf_body(tmp_path, "tiny-a")
    first = zip_bytes([("tiny-a.gguf", model_bytes, REGULAR)])
    second = zip_bytes([("README.txt", README, REGULAR)])
    files = []
    for name, data in (("weights.zip", first), ("docs.zip", second)):
        files.append(
            {
                "name": name,
                "url": nginx.put(name, data),
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
                "role": "model" if name == "weights.zip" else "extra",
            }
        )
    entry = {"id": "tiny-a", "name": "tiny-a", "type": "llm", "files": files,
             "deviceRequirements": {"minRAM": 1 << 30}}  # fmt: skip
    registry = make_registry(entry)

    model = registry.pull_sync("tiny-a")

    assert {item.rel_path: item.role for item in model.files} == {
        "tiny-a.gguf": "model",
        "README.txt": "extra",
    }
    assert model.path is not None
    assert model.path.read_bytes() == model_bytes


def test_gc_removes_part_files_a_finished_or_forgotten_download_left_and_keeps_a_paused_one(
    nginx: NginxServer, tmp_path: Path, make_registry: Callable[..., Registry]
) -> None:
    served = serve_model(nginx, tmp_path, "tiny-a", size_bytes=64 * KIB)
    registry = make_registry(served_entry(served))
    registry.pull_sync("tiny-a")
    store = registry.store
    left_after_ready = store.download_dir("tiny-a")  # as a process that died before clean-up
    left_after_ready.mkdir(parents=True)
    (left_after_ready / "tiny-a.gguf.part").write_bytes(b"x" * 1000)
    forgotten = store.download_dir("gone-model")
    forgotten.mkdir(parents=True)
    (forgotten / "m.part").write_bytes(b"y" * 1000)
    store.register("tiny-b")
    store.transition("tiny-b", "queued")
    store.transition("tiny-b", "paused")
    waiting = store.download_dir("tiny-b")
    waiting.mkdir(parents=True)
    (waiting / "m.part").write_bytes(b"z" * 1000)

    store.gc()

    assert not left_after_ready.exists()
    assert not forgotten.exists()
    assert (waiting / "m.part").exists()
