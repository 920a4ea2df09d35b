"""The hash and verify commands: sha256sum-style output, verdicts per file, bad byte ranges
from a recorded manifest, --json, and exit statuses."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from tests.cli_helpers import run_cli

from iris_models.cli import main


@pytest.fixture
def data_file(tmp_path: Path) -> tuple[Path, bytes]:
    data = bytes(range(256)) * 4096  # 1 MiB
    path = tmp_path / "model.bin"
    path.write_bytes(data)
    return path, data


def test_hash_prints_algo_hex_and_path(capsys, data_file):
    path, data = data_file
    status, out, _ = run_cli(capsys, "hash", str(path))
    assert status == 0
    assert out == f"sha256:{hashlib.sha256(data).hexdigest()}  {path}\n"


def test_hash_json_reports_each_file_and_fails_on_a_missing_one(capsys, data_file, tmp_path):
    path, data = data_file
    missing = tmp_path / "missing.bin"
    status, out, _ = run_cli(capsys, "hash", str(path), str(missing), "--algo", "blake3", "--json")
    assert status == 1
    first, second = json.loads(out)
    assert first["digest"].startswith("blake3:")
    assert first["size"] == len(data)
    assert second["digest"] is None
    assert "No such file" in second["error"]


def test_verify_ok_mismatch_and_malformed_digest(capsys, data_file):
    path, data = data_file
    good = f"sha256:{hashlib.sha256(data).hexdigest()}"
    status, out, _ = run_cli(capsys, "verify", str(path), "--expect", good)
    assert status == 0
    assert out.startswith("OK")
    status, out, _ = run_cli(capsys, "verify", str(path), "--expect", "0" * 64)
    assert status == 1
    assert out.startswith("MISMATCH")
    status, out, err = run_cli(capsys, "verify", str(path), "--expect", "sha256:nothex")
    assert status == 1
    assert out == ""
    assert "malformed sha256 digest" in err


def test_verify_pieces_records_a_manifest_that_later_names_the_bad_range(capsys, data_file):
    path, data = data_file
    good = f"sha256:{hashlib.sha256(data).hexdigest()}"
    status, out, _ = run_cli(
        capsys, "verify", str(path), "--expect", good, "--pieces", "--piece-size", "64K"
    )
    assert status == 0
    assert "16 pieces recorded" in out
    assert (path.parent / "model.bin.manifest.json").is_file()

    damaged = bytearray(data)
    damaged[300_000] ^= 0xFF
    path.write_bytes(damaged)
    status, out, _ = run_cli(capsys, "verify", str(path), "--json")
    assert status == 1
    (report,) = json.loads(out)
    assert report["bad_ranges"] == [[262_144, 327_680]]


def test_verify_pieces_never_records_a_manifest_for_a_file_that_failed(capsys, data_file):
    path, _ = data_file
    status, _, _ = run_cli(capsys, "verify", str(path), "--expect", "0" * 64, "--pieces")
    assert status == 1
    assert not (path.parent / "model.bin.manifest.json").exists()


def test_verify_without_anything_to_check_against_says_what_to_pass(capsys, data_file):
    path, _ = data_file
    status, out, _ = run_cli(capsys, "verify", str(path))
    assert status == 1
    assert "pass --expect DIGEST or --manifest FILE" in out


def test_verify_expect_count_must_match_paths(capsys, data_file):
    path, _ = data_file
    with pytest.raises(SystemExit, match="--expect was given 1 times for 2 paths"):
        main(["verify", str(path), str(path), "--expect", "0" * 64])
