"""iris-models: keep GGUF language models on the devices that run them.

The public surface is re-exported here; the compiled core (``iris_models._core``) is private.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import gguf
from .errors import GGUFError, GGUFNeedMoreDataError, GGUFTruncatedError, IrisModelsError

try:
    __version__ = version("iris-models")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "GGUFError",
    "GGUFNeedMoreDataError",
    "GGUFTruncatedError",
    "IrisModelsError",
    "__version__",
    "gguf",
]


def __dir__() -> list[str]:
    return __all__
