"""`iris-models pull` and `iris-models downloads` against a private nginx and a real store:
JSON events, a model already installed, unknown ids, usage errors, the rate cap, mirrors,
listing and resuming paused downloads, and Ctrl-C in a real process (status 130, then resume)."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.gguf_py_files import make_gguf
from tests.servers.nginx import Kind, NginxServer

from iris_models import Registry
from iris_models.download import DownloadEvent, ProgressEvent
from iris_models.errors import DownloadPaused
from iris_models.store import LifecycleState, Store

S = LifecycleState
KIB = 1024
MIB = 1024 * KIB
GUARD_S = 120.0
"""Only so that a command that never ends fails the test instead of hanging the suite."""


@pytest.fixture(autouse=True)
def _allow_http(clean_network_environment: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRIS_MODELS_ALLOW_HTTP", "1")


def gguf_body(folder: Path, name: str, size_bytes: int = 0) -> bytes:
    """A valid GGUF file of about `size_bytes`, with bytes of its own for each name."""
    return make_gguf(folder / f"{name}.gguf", name, rows=max(size_bytes // 32, 1)).read_bytes()


def entry(model_id: str, url: str, body: bytes) -> dict[str, Any]:
    return {
        "id": model_id,
        "name": model_id,
        "type": "llm",
        "downloadUrl": url,
        "sha256": hashlib.sha256(body).hexdigest(),
        "fileSize": len(body),
        "deviceRequirements": {"minRAM": 1 << 30},
    }


class Setup:
    """Models served by one nginx, a catalog file naming them, and a store folder."""

    def __init__(self, nginx: NginxServer, tmp_path: Path) -> None:
        self.nginx = nginx
        self.tmp_path = tmp_path
        self.catalog = tmp_path / "catalog.json"
        self.store = tmp_path / "store"
        self.bodies: dict[str, bytes] = {}
        self._entries: list[dict[str, Any]] = []

    def serve(self, model_id: str, *, size_bytes: int = 0, kind: Kind = "files") -> bytes:
        body = gguf_body(self.tmp_path / "bodies", model_id, size_bytes)
        self.nginx.put(f"{model_id}.gguf", body)
        url = self.nginx.url(f"{model_id}.gguf", kind)
        self._entries.append(entry(model_id, url, body))
        self.catalog.write_text(
            json.dumps({"version": "1.0", "models": {"llm": self._entries}}), encoding="utf-8"
        )
        self.bodies[model_id] = body
        return body

    def cli(self, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        """``iris-models --catalog CATALOG COMMAND ... --store STORE`` in this process."""
        command, *rest = args
        return run_cli(
            capsys, "--catalog", str(self.catalog), command, *rest, "--store", str(self.store)
        )

    def assert_ready(self, model_id: str) -> None:
        with Store(self.store, auto_cleanup=False) as store:
            model = store.get(model_id)
            assert model.state is S.READY
            assert model.path is not None
            assert model.path.read_bytes() == self.bodies[model_id]
            assert not store.download_dir(model_id).exists()
            assert store.saved_downloads() == []


@pytest.fixture
def setup(nginx: NginxServer, tmp_path: Path) -> Setup:
    return Setup(nginx, tmp_path)


def json_lines(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines()]


# --- pull ----------------------------------------------------------------------------------------


def test_pull_json_prints_one_event_per_line_ending_with_completed(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    body = setup.serve("tiny-a", size_bytes=64 * KIB)

    status, out, err = setup.cli(capsys, "pull", "tiny-a", "--json")

    assert status == 0
    assert err == ""
    events = json_lines(out)
    assert events[0]["event"] == "queued"
    assert "started" in [e["event"] for e in events]
    assert {e["model_id"] for e in events} == {"tiny-a"}
    completed = events[-1]
    assert completed["event"] == "completed"
    assert completed["digest_source"] == "catalog"
    assert completed["sha256"] == f"sha256:{hashlib.sha256(body).hexdigest()}"
    assert completed["size_bytes"] == len(body)
    setup.assert_ready("tiny-a")


def test_pull_of_several_models_installs_each(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.serve("tiny-a")
    setup.serve("tiny-b")

    status, out, _ = setup.cli(capsys, "pull", "tiny-a", "tiny-b", "--max-concurrent", "1")

    assert status == 0
    assert "tiny-a: ready" in out
    assert "tiny-b: ready" in out
    setup.assert_ready("tiny-a")
    setup.assert_ready("tiny-b")


def test_pull_of_a_ready_model_says_ready_without_the_network(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.serve("tiny-a")
    assert setup.cli(capsys, "pull", "tiny-a")[0] == 0
    setup.nginx.stop()  # any request now would fail

    status, out, err = setup.cli(capsys, "pull", "tiny-a")

    assert status == 0
    assert err == ""
    assert out.startswith("tiny-a: ready (")
    assert str(setup.store / "models" / "tiny-a" / "tiny-a.gguf") in out
    setup.assert_ready("tiny-a")


def test_pull_of_an_unknown_id_fails_with_a_did_you_mean(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.serve("tiny-a")

    status, out, err = setup.cli(capsys, "pull", "tiny-x")

    assert_one_line_error(status, out, err, "did you mean tiny-a?")
    assert "'tiny-x'" in err
    assert setup.nginx.requests() == []


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--connections", "0"),
        ("--connections", "65"),
        ("--connections", "many"),
        ("--limit-rate", "fast"),
        ("--limit-rate", "0"),
        ("--max-concurrent", "0"),
    ],
)
def test_pull_refuses_bad_numbers_as_usage_errors(
    option: str, value: str, setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.serve("tiny-a")

    with pytest.raises(SystemExit) as exited:
        setup.cli(capsys, "pull", "tiny-a", option, value)

    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert option in err
    assert repr(value) in err
    assert setup.nginx.requests() == []


def test_pull_with_limit_rate_caps_the_speed_and_installs(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.serve("tiny-a", size_bytes=3 * MIB // 2)

    status, out, _ = setup.cli(capsys, "pull", "tiny-a", "--limit-rate", "1M", "--json")

    assert status == 0
    completed = json_lines(out)[-1]
    assert completed["event"] == "completed"
    # 1.5 MiB at 1 MiB/s with a quarter-second burst: at least 1.25 s (a lower bound only).
    assert completed["duration_s"] >= 1.0
    setup.assert_ready("tiny-a")


def test_pull_tries_the_mirror_before_the_catalogs_url(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    body = setup.serve("tiny-a", size_bytes=64 * KIB)
    mirror = setup.nginx.put("mirror/tiny-a.gguf", body)

    status, _, _ = setup.cli(capsys, "pull", "tiny-a", "--mirror", mirror)

    assert status == 0
    setup.assert_ready("tiny-a")
    served = setup.nginx.requests("/files/mirror/tiny-a.gguf", at_least=2)
    assert sum(r.body_bytes_sent for r in served if r.range != "bytes=0-0") == len(body)
    assert setup.nginx.requests("/files/tiny-a.gguf") == []


def test_pull_falls_back_to_the_catalogs_url_when_the_mirror_lacks_the_file(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.serve("tiny-a")
    missing = setup.nginx.url("mirror/absent.gguf")

    status, _, _ = setup.cli(capsys, "pull", "tiny-a", "--mirror", missing)

    assert status == 0
    setup.assert_ready("tiny-a")
    assert [r.status for r in setup.nginx.requests("/files/mirror/absent.gguf")] == [404]


def wrong_digest_in_catalog(setup: Setup) -> None:
    catalog = json.loads(setup.catalog.read_text(encoding="utf-8"))
    catalog["models"]["llm"][0]["sha256"] = hashlib.sha256(b"another file").hexdigest()
    setup.catalog.write_text(json.dumps(catalog), encoding="utf-8")


def test_pull_of_a_file_that_fails_its_digest_exits_1_and_leaves_it_in_error(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.serve("tiny-a")
    wrong_digest_in_catalog(setup)

    status, out, err = setup.cli(capsys, "pull", "tiny-a")

    assert status == 1
    assert out == ""
    assert err.startswith("iris-models: error: tiny-a: the downloaded file has")
    assert "Traceback" not in err
    with Store(setup.store, auto_cleanup=False) as store:
        assert store.get("tiny-a").state is S.ERROR


def test_pull_of_a_file_that_fails_its_digest_says_so_in_one_whole_line(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    body = setup.serve("tiny-a")
    wrong_digest_in_catalog(setup)

    status, out, err = setup.cli(capsys, "pull", "tiny-a")

    assert_one_line_error(status, out, err, "iris-models: error: tiny-a: ")
    assert f"sha256:{hashlib.sha256(body).hexdigest()}" in err  # the digest the bytes have


def test_pull_needs_allow_unverified_for_a_model_without_a_digest(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.serve("tiny-a")
    catalog = json.loads(setup.catalog.read_text(encoding="utf-8"))
    del catalog["models"]["llm"][0]["sha256"]
    setup.catalog.write_text(json.dumps(catalog), encoding="utf-8")

    status, out, err = setup.cli(capsys, "pull", "tiny-a")

    assert status == 1
    assert out == ""
    assert err.startswith("iris-models: error: tiny-a: no digest is known")

    status, out, _ = setup.cli(capsys, "pull", "tiny-a", "--allow-unverified", "--json")

    assert status == 0
    completed = json_lines(out)[-1]
    assert completed["event"] == "completed"
    assert completed["digest_source"] == "none"
    setup.assert_ready("tiny-a")


def test_two_pull_processes_on_one_store_fetch_the_model_once(
    nginx_factory: Callable[..., NginxServer], tmp_path: Path
) -> None:
    setup = Setup(nginx_factory(rate_bytes_per_s=512 * KIB), tmp_path)
    body = setup.serve("tiny-a", size_bytes=MIB, kind="slow")
    command = [sys.executable, "-m", "iris_models.cli", "--catalog", str(setup.catalog)]
    command += ["pull", "tiny-a", "--store", str(setup.store), "--json"]
    children = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [child.communicate(timeout=GUARD_S) for child in children]

    assert [child.returncode for child in children] == [0, 0], outputs
    events = [json_lines(out) for out, _ in outputs]
    assert sum(e["event"] == "started" for lines in events for e in lines) == 1
    setup.assert_ready("tiny-a")
    fetched = setup.nginx.requests("tiny-a.gguf", at_least=2)
    assert sum(r.body_bytes_sent for r in fetched if r.range != "bytes=0-0") == len(body)


# --- downloads -----------------------------------------------------------------------------------


def test_downloads_with_nothing_under_way_says_so(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = setup.cli(capsys, "downloads")

    assert status == 0
    assert out == "no downloads under way or paused\n"
    assert err == ""
    assert json.loads(setup.cli(capsys, "downloads", "--json")[1]) == []
    assert setup.cli(capsys, "downloads", "--resume")[1] == "nothing to resume\n"


def pause_partway(setup: Setup, model_id: str, after_bytes: int) -> int:
    """Pulls `model_id` through the API and pauses it once `after_bytes` are in; the bytes
    saved."""
    with Registry(setup.store, catalogs=[str(setup.catalog)]) as registry:

        def pause_when_started(event: DownloadEvent) -> None:
            if isinstance(event, ProgressEvent) and event.bytes_done >= after_bytes:
                registry.downloader.pause(model_id)

        with pytest.raises(DownloadPaused):
            registry.pull_sync(model_id, on_event=pause_when_started)
        [saved] = registry.store.saved_downloads()
        return saved.bytes_done


def test_downloads_lists_a_paused_download_and_resume_finishes_it(
    nginx_factory: Callable[..., NginxServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = Setup(nginx_factory(rate_bytes_per_s=512 * KIB), tmp_path)
    body = setup.serve("tiny-a", size_bytes=MIB, kind="slow")
    done = pause_partway(setup, "tiny-a", 128 * KIB)

    status, out, _ = setup.cli(capsys, "downloads", "--json")

    assert status == 0
    [row] = json.loads(out)
    assert row["id"] == "tiny-a"
    assert row["state"] == "paused"
    assert row["bytes_done"] == done
    assert row["total_bytes"] == len(body)
    assert row["files"] == ["tiny-a.gguf"]
    assert row["resumable"] is True
    status, table, _ = setup.cli(capsys, "downloads")
    assert status == 0
    assert "tiny-a" in table
    assert "paused" in table

    status, out, _ = setup.cli(capsys, "downloads", "--resume", "--json")

    assert status == 0
    events = json_lines(out)
    assert [e["event"] for e in events][:3] == ["queued", "resumed", "started"]
    assert events[-1]["event"] == "completed"
    assert events[-1]["fetched_bytes"] == len(body) - done
    setup.assert_ready("tiny-a")
    assert json.loads(setup.cli(capsys, "downloads", "--json")[1]) == []


# --- Ctrl-C --------------------------------------------------------------------------------------


def wait_for(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + GUARD_S
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def test_ctrl_c_pauses_pull_with_status_130_and_running_it_again_resumes(
    nginx_factory: Callable[..., NginxServer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup = Setup(nginx_factory(rate_bytes_per_s=256 * KIB), tmp_path)
    body = setup.serve("tiny-a", size_bytes=2 * MIB, kind="slow")  # 8 s whole at this rate
    part = setup.store / ".downloads" / "tiny-a" / "tiny-a.gguf.part"
    command = [sys.executable, "-m", "iris_models.cli", "--catalog", str(setup.catalog)]
    command += ["pull", "tiny-a", "--store", str(setup.store)]
    with subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        try:
            wait_for(lambda: part.exists() or child.poll() is not None, "the part file")
            time.sleep(0.5)  # some bytes in (a lower bound: the pause works at any point)
            child.send_signal(signal.SIGINT)
            out, err = child.communicate(timeout=GUARD_S)
        finally:
            if child.poll() is None:
                child.kill()
                child.communicate()

    assert child.returncode == 130, err
    assert "tiny-a: paused; run `iris-models pull tiny-a` again to resume" in out
    assert "pausing" in err
    assert "Traceback" not in err
    with Store(setup.store, auto_cleanup=False) as store:
        assert store.get("tiny-a").state is S.PAUSED
        [saved] = store.saved_downloads()
    assert 0 < saved.bytes_done < len(body)

    fast = setup.nginx.url("tiny-a.gguf")  # the rest without the rate limit
    status, out, _ = setup.cli(capsys, "pull", "tiny-a", "--mirror", fast)

    assert status == 0
    assert out.startswith("tiny-a: ready (")
    setup.assert_ready("tiny-a")
    [rest] = [
        r for r in setup.nginx.requests("/files/tiny-a.gguf", at_least=2) if r.range != "bytes=0-0"
    ]
    assert rest.range == f"bytes={saved.bytes_done}-{len(body) - 1}"


def test_pull_with_a_mirror_refuses_several_models_rather_than_misuse_the_url(
    setup: Setup, capsys: pytest.CaptureFixture[str]
) -> None:
    setup.serve("tiny-a")
    setup.serve("tiny-b")

    status, out, err = setup.cli(
        capsys, "pull", "tiny-a", "tiny-b", "--mirror", "http://127.0.0.1:9/x.gguf"
    )

    assert_one_line_error(status, out, err, "--mirror names one file's URL")
    assert setup.nginx.requests() == []
