"""What the command-line tests share: running `iris-models` in-process, and the shape every
expected failure must have (one line on stderr, exit status 1, no traceback)."""

from __future__ import annotations

import pytest

from iris_models.cli import main

__all__ = ["assert_one_line_error", "run_cli"]


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(list(args))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assert_one_line_error(status: int, out: str, err: str, expected: str) -> None:
    assert status == 1
    assert out == ""
    assert err.startswith("iris-models: error: ")
    assert err.count("\n") == 1
    assert expected in err
    assert "Traceback" not in err
