"""Model ids: which strings may name a model (and so a folder under the store root), and how
an id is made from a file name or an Ollama tag."""

from __future__ import annotations

import re

from ..errors import InvalidModelIdError

__all__ = ["MAX_ID_LENGTH", "derive_model_id", "validate_model_id"]

MAX_ID_LENGTH = 128

# Letters, digits and "._-+", starting with a letter or digit: safe as a folder name on every
# file system the package runs on, and never a path (no separator, no leading dot).
_VALID_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")
_INVALID_RUN = re.compile(r"[^A-Za-z0-9._+-]+")


def validate_model_id(model_id: object) -> str:
    """Returns ``model_id`` if it can name a model; raises InvalidModelIdError otherwise."""
    if not isinstance(model_id, str):
        message = f"a model id must be a string, not {type(model_id).__name__}"
        raise InvalidModelIdError(message)
    shown = repr(model_id) if len(model_id) <= MAX_ID_LENGTH else f"{model_id[:40]!r}..."
    if not model_id:
        message = "a model id cannot be empty"
        raise InvalidModelIdError(message)
    if len(model_id) > MAX_ID_LENGTH:
        message = f"model id {shown} is {len(model_id)} characters; the most is {MAX_ID_LENGTH}"
        raise InvalidModelIdError(message, model_id=model_id)
    if "/" in model_id or "\\" in model_id or ".." in model_id:
        message = (
            f"model id {shown} contains a path separator or '..'; an id names one folder "
            "in the store, so it may hold only letters, digits and '._-+'"
        )
        raise InvalidModelIdError(message, model_id=model_id)
    if not _VALID_ID.fullmatch(model_id):
        message = (
            f"model id {shown} is not valid: use letters, digits and '._-+', starting with "
            "a letter or digit"
        )
        raise InvalidModelIdError(message, model_id=model_id)
    return model_id


def derive_model_id(name: str) -> str:
    """A valid id made from a file name or tag: lower case, ``.gguf`` dropped, every run of
    other characters (``:``, ``/``, spaces) turned into one ``-``."""
    stem = name[: -len(".gguf")] if name.lower().endswith(".gguf") else name
    text = _INVALID_RUN.sub("-", stem.lower())
    text = re.sub(r"\.{2,}", ".", text).strip("-._+")
    text = text[:MAX_ID_LENGTH].rstrip("-._+")
    if not text:
        message = f"cannot make a model id from {name!r}; give one explicitly"
        raise InvalidModelIdError(message)
    return text
