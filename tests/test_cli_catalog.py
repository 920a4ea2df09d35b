"""The catalog and recommendation commands: list, search, show, recommend, catalog validate and
refresh, the global --catalog and --offline options, and inspect on a URL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli_helpers import assert_one_line_error, run_cli
from tests.gguf_py_files import tiny_gguf
from tests.servers.http_server import HTTPTestServer

GEMMA = "gemma-3-270m-q4_k_m"

pytestmark = pytest.mark.usefixtures("clean_network_environment")


@pytest.fixture(autouse=True)
def _no_network_by_accident(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("IRIS_MODELS_HOME", str(tmp_path / "store"))


def user_catalog(path: Path, model_id: str = "my-model") -> Path:
    document = {
        "version": "1.0",
        "models": {
            "llm": [
                {
                    "id": model_id,
                    "name": "My model",
                    "type": "llm",
                    "downloadUrl": "https://example.invalid/my-model.gguf",
                    "deviceRequirements": {"minRAM": 1 << 30},
                }
            ]
        },
    }
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_list_json_holds_the_bundled_models(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "list", "--json")
    assert status == 0
    models = {model["id"]: model for model in json.loads(out)}
    assert GEMMA in models
    assert models[GEMMA]["verified"] is True
    assert models[GEMMA]["total_size_bytes"] == 253_113_024


def test_list_filters_by_type(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "list", "--type", "embedding", "--json")
    assert status == 0
    assert {model["type"] for model in json.loads(out)} == {"embedding"}


def test_global_catalog_option_adds_models(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = user_catalog(tmp_path / "mine.json")
    status, out, _ = run_cli(capsys, "--catalog", str(path), "list")
    assert status == 0
    assert "my-model" in out
    assert GEMMA in out


def test_search_finds_by_words_and_fails_on_no_match(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(capsys, "search", "gemma", "chat", "--json")
    assert status == 0
    assert [model["id"] for model in json.loads(out)] == [GEMMA]
    status, out, _ = run_cli(capsys, "search", "no-such-words-anywhere")
    assert status == 1
    assert "No catalog model matches" in out


def test_show_prints_the_entry_and_unknown_ids_fail_with_a_hint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run_cli(capsys, "show", GEMMA)
    assert status == 0
    assert "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818" in out
    status, out, err = run_cli(capsys, "show", "gemma-3-270m-q4_k")
    assert_one_line_error(status, out, err, "did you mean")


def test_recommend_json_for_a_shipped_profile(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(
        capsys, "recommend", "--profile", "budget-android-phone", "--all", "--json"
    )
    assert status == 0
    report = json.loads(out)
    assert report["device"]["name"] == "budget-android-phone"
    by_id = {entry["id"]: entry for entry in report["recommendations"]}
    assert by_id[GEMMA]["memory"]["kv_cache_bytes"] == (15 * 1024 + 3 * 4096) * 1024
    assert by_id["llama-guard-3-8b-q4_0"]["compatible"] is False
    assert all(entry["reasons"] for entry in report["recommendations"])


def test_recommend_explain_lists_reasons(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run_cli(
        capsys, "recommend", "--profile", "raspberry-pi-5", "--context", "8192", "--explain"
    )
    assert status == 0
    assert "raspberry-pi-5" in out
    assert "needs " in out
    assert "K/V cache" in out


def test_recommend_refuses_a_bad_context(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, _ = run_cli(capsys, "recommend", "--profile", "x86-laptop", "--context", "0")
    assert status == 2


def test_catalog_validate_exit_status_and_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = user_catalog(tmp_path / "good.json")
    bad = tmp_path / "bad.json"
    document = json.loads(good.read_text())
    document["models"]["llm"][0]["deviceRequirements"]["minRAM"] = 0
    bad.write_text(json.dumps(document))
    status, out, _ = run_cli(capsys, "catalog", "validate", str(good))
    assert status == 0
    assert "valid, 1 models" in out
    status, out, _ = run_cli(capsys, "catalog", "validate", str(good), str(bad), "--json")
    assert status == 1
    results = json.loads(out)
    assert [result["valid"] for result in results] == [True, False]
    assert results[1]["json_path"] == "models.llm[0].deviceRequirements.minRAM"
    assert results[1]["rule"] == "minimum"


def test_catalog_refresh_reports_each_source(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    server: HTTPTestServer,
) -> None:
    monkeypatch.setenv("IRIS_MODELS_ALLOW_HTTP", "1")
    body = user_catalog(tmp_path / "remote.json", "remote-model").read_bytes()
    url = server.serve("/catalog.json", body, etag='"v1"')
    status, out, _ = run_cli(capsys, "--catalog", url, "catalog", "refresh", "--json")
    assert status == 0
    report = json.loads(out)
    assert report["sources"][-1]["outcome"] == "updated"
    server.serve("/catalog.json", b"", status=500)
    status, out, _ = run_cli(capsys, "--catalog", url, "catalog", "refresh", "--json")
    assert status == 1  # the fetch failed; the cached copy was used
    assert json.loads(out)["sources"][-1]["outcome"] == "stale"
    before = server.count()
    status, out, _ = run_cli(capsys, "--offline", "--catalog", url, "list", "--json")
    assert status == 0
    assert "remote-model" in {model["id"] for model in json.loads(out)}
    assert server.count() == before


def test_inspect_url_reads_only_the_header(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, server: HTTPTestServer
) -> None:
    path = tiny_gguf(tmp_path / "tiny.gguf", "tiny")
    url = server.serve("/tiny.gguf", path.read_bytes())
    status, out, err = run_cli(capsys, "inspect", url, "--json")
    assert status == 0, err
    assert json.loads(out)["summary"]["n_tensors"] >= 1
    assert all("range" in request.headers for request in server.requests("/tiny.gguf"))


def test_inspect_url_offline_is_one_line_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRIS_MODELS_OFFLINE", "1")
    status, out, err = run_cli(capsys, "inspect", "https://example.invalid/x.gguf")
    assert_one_line_error(status, out, err, "offline")
