"""Shared by tests that need a real component (a GPU driver, a server, a command-line tool)."""

from __future__ import annotations

import os

import pytest


def require_service(available: bool, reason: str) -> None:
    """Skips the test when a real component is missing, unless IRIS_MODELS_REQUIRE_SERVICES=1
    (CI), where a missing component is a failure."""
    if available:
        return
    if os.environ.get("IRIS_MODELS_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{reason} (IRIS_MODELS_REQUIRE_SERVICES=1)")
    pytest.skip(reason)
