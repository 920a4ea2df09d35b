"""Where iris-models keeps things: the model store and the cache, per platformdirs, with
IRIS_MODELS_HOME and IRIS_MODELS_CACHE_DIR (or arguments) taking precedence."""

from __future__ import annotations

import os
from pathlib import Path

APP_NAME = "iris-models"


def store_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The model store: the argument, else IRIS_MODELS_HOME, else the user data folder."""
    if explicit is not None:
        return Path(explicit)
    home = os.environ.get("IRIS_MODELS_HOME")
    if home:
        return Path(home)
    import platformdirs  # here: 5 ms of every start-up, needed only without the variable

    return platformdirs.user_data_path(APP_NAME, appauthor=False)


def cache_root(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Rebuildable state (probe results): the argument, else IRIS_MODELS_CACHE_DIR, else the
    user cache folder."""
    if explicit is not None:
        return Path(explicit)
    cache = os.environ.get("IRIS_MODELS_CACHE_DIR")
    if cache:
        return Path(cache)
    import platformdirs

    return platformdirs.user_cache_path(APP_NAME, appauthor=False)
