"""The package's public surface: lazy submodules, a tidy dir(), and a helpful message when
the compiled core was never built."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import iris_models

SRC = Path(__file__).resolve().parent.parent / "src"


def test_public_names_and_version():
    assert "gguf" in dir(iris_models)
    assert issubclass(iris_models.GGUFError, ValueError)
    assert issubclass(iris_models.GGUFTruncatedError, iris_models.GGUFError)
    assert issubclass(iris_models.GGUFNeedMoreDataError, iris_models.IrisModelsError)
    assert iris_models.__version__ != "0+unknown"


def test_unbuilt_source_tree_explains_how_to_build(tmp_path):
    # A copy of the Python sources without the compiled _core, as a fresh checkout has.
    # -S keeps site hooks (an editable install's import redirect) from finding a built one.
    shutil.copytree(
        SRC / "iris_models", tmp_path / "iris_models", ignore=shutil.ignore_patterns("*.so")
    )
    probe = "import iris_models.gguf"
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "compiled core (_core) is missing" in result.stderr
    assert "pip install ." in result.stderr
