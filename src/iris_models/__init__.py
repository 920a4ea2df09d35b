"""iris-models: keep GGUF language models on the devices that run them.

The public surface is re-exported here; the compiled core (``iris_models._core``) is private.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from .errors import GGUFError, GGUFNeedMoreDataError, GGUFTruncatedError, IrisModelsError

if TYPE_CHECKING:
    from . import gguf
    from .registry import Registry
    from .store import Store

__all__ = [
    "GGUFError",
    "GGUFNeedMoreDataError",
    "GGUFTruncatedError",
    "IrisModelsError",
    "Registry",
    "Store",
    "__version__",
    "gguf",
]


# Submodules load on first use, so that importing the package (and `iris-models --help`)
# does not pay for numpy and the compiled core.
_LAZY_SUBMODULES = frozenset({"gguf"})
_LAZY_NAMES = {"Registry": "registry", "Store": "store"}


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        return import_module(f"{__name__}.{name}")
    if name in _LAZY_NAMES:
        return getattr(import_module(f"{__name__}.{_LAZY_NAMES[name]}"), name)
    if name == "__version__":
        return _version()
    message = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(message)


def __dir__() -> list[str]:
    return __all__


def _version() -> str:
    # importlib.metadata costs ~20 ms to import: paid only by those who ask for the version.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("iris-models")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"
