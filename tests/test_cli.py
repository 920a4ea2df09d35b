"""The iris-models command line: inspect's output, --json for scripts, and one-line errors."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.cli_helpers import run_cli

from iris_models.cli import main

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "src" / "iris_models" / "data" / "sample.gguf"


def test_inspect_sample_prints_the_summary(capsys):
    status, out, err = run_cli(capsys, "inspect", "--sample")
    assert status == 0, err
    assert "iris-models sample (synthetic, random weights)" in out
    assert "Q4_K_M (file type 15)" in out
    assert "320 tokens" in out
    assert "tokenizer.ggml.tokens" in out


def test_inspect_json_is_one_document_with_summary_and_truncated_arrays(capsys):
    status, out, _ = run_cli(capsys, "inspect", "--sample", "--json")
    assert status == 0
    document = json.loads(out)
    assert document["version"] == 3
    assert document["summary"]["architecture"] == "llama"
    assert document["summary"]["vocab_size"] == 320
    tokens = document["metadata"]["tokenizer.ggml.tokens"]
    assert tokens["length"] == 320
    assert tokens["element_type"] == "STRING"
    assert tokens["head"][:3] == ["<unk>", "<s>", "</s>"]
    assert "items" not in tokens
    assert "tensors" not in document


def test_inspect_json_full_arrays_and_tensors(capsys):
    status, out, _ = run_cli(capsys, "inspect", "--sample", "--json", "--full-arrays", "--tensors")
    assert status == 0
    document = json.loads(out)
    assert len(document["metadata"]["tokenizer.ggml.tokens"]["items"]) == 320
    names = [tensor["name"] for tensor in document["tensors"]]
    assert "token_embd.weight" in names
    embedding = document["tensors"][names.index("token_embd.weight")]
    assert embedding["type"] == "Q8_0"
    assert embedding["shape"] == [256, 320]


def test_inspect_key_prints_one_value_in_full(capsys):
    status, out, _ = run_cli(capsys, "inspect", "--sample", "--key", "tokenizer.ggml.tokens")
    assert status == 0
    assert out.count("\n") >= 320
    status, out, _ = run_cli(
        capsys, "inspect", "--sample", "--key", "llama.context_length", "--json"
    )
    assert json.loads(out) == {"llama.context_length": 2048}


def test_inspect_tensors_table_lists_every_tensor(capsys):
    status, out, _ = run_cli(capsys, "inspect", "--sample", "--tensors")
    assert status == 0
    assert "blk.0.ffn_down.weight" in out
    assert "Q6_K" in out


def test_unknown_key_is_one_line_error(capsys):
    status, out, err = run_cli(capsys, "inspect", "--sample", "--key", "no.such.key")
    assert status == 1
    assert out == ""
    assert err.count("\n") == 1
    assert "no metadata key 'no.such.key'" in err


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        pytest.param(lambda d: d / "missing.gguf", "No such file or directory", id="missing"),
        pytest.param(lambda d: d, "is a directory", id="directory"),
        pytest.param(
            lambda d: (d / "empty.gguf", (d / "empty.gguf").write_bytes(b""))[0],
            "empty",
            id="empty",
        ),
        pytest.param(
            lambda d: (d / "page.gguf", (d / "page.gguf").write_bytes(b"<!DOCTYPE html>"))[0],
            "HTML page",
            id="html",
        ),
        pytest.param(
            lambda d: (d / "cut.gguf", (d / "cut.gguf").write_bytes(SAMPLE.read_bytes()[:5000]))[0],
            "truncated",
            id="truncated",
        ),
    ],
)
def test_bad_paths_give_one_line_and_status_1(capsys, tmp_path, make, expected):
    path = make(tmp_path)
    status, out, err = run_cli(capsys, "inspect", str(path))
    assert status == 1
    assert out == ""
    assert err.startswith("iris-models: error: ")
    assert expected in err
    assert "Traceback" not in err


def test_inspect_requires_a_path_or_sample(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect"])
    assert exit_info.value.code == 2


def test_console_script_runs_and_help_does_not_load_the_core():
    executable = shutil.which("iris-models")
    assert executable is not None, "the iris-models console script is not installed"
    result = subprocess.run(
        [executable, "inspect", "--sample", "--json"], capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout)["summary"]["n_tensors"] == 11
    probe = (
        "import sys; from iris_models.cli import build_parser; build_parser(); "
        "print('numpy' in sys.modules, 'iris_models._core' in sys.modules)"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == ["False", "False"]


def test_the_readmes_first_command_runs_the_main_job_on_the_bundled_defaults(
    tmp_path: Path,
) -> None:
    """The README opens with `pip install . && <main job>`: the installed console script runs
    that job on a machine with nothing set up (a fresh home, no network) and recommends
    from the bundled catalog for this device."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0].strip()
    install, _, job = first_block.partition(" && ")
    assert install == "pip install ."
    program, *arguments = job.split()
    executable = shutil.which(program)
    assert executable is not None, f"the {program} console script is not installed"
    environment = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "IRIS_MODELS_OFFLINE": "1"}

    command = [executable, *arguments, "--json"]
    result = subprocess.run(command, check=False, capture_output=True, text=True, env=environment)

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["recommendations"], report
    ids = {entry["id"] for entry in report["recommendations"]}
    assert "gemma-3-270m-q4_k_m" in ids  # the one verified entry runs anywhere
