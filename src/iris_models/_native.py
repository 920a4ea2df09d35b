"""Imports the compiled core, with a message that says what to do when it was never built."""

from __future__ import annotations

try:
    from . import _core
except ImportError as error:
    if "_core" not in str(error):
        raise
    message = (
        "iris_models' compiled core (_core) is missing: this looks like a source checkout that "
        "was never built. Install the package with `pip install .` (or `pip install -e .` for "
        "development) from the repository root."
    )
    raise ImportError(message) from error

__all__ = ["_core"]
