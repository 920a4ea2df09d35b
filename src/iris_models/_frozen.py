"""Building frozen dataclasses in bulk (a large catalog, a recommendation over it, a store
listing)."""

from __future__ import annotations

from typing import Any, TypeVar

__all__ = ["frozen"]

_D = TypeVar("_D")
_new = object.__new__
_set = object.__setattr__


def frozen(cls: type[_D], values: dict[str, Any]) -> _D:
    """`cls(**values)` for values already checked, at a fraction of the cost: a frozen
    dataclass's __init__ sets each field through object.__setattr__, which was a third of
    building a 10,000-model catalog. `values` must name every field, and becomes the
    instance's namespace (the caller hands it over). A __post_init__ is not run: a caller
    whose class has one calls it. The tests compare the results with normal constructions,
    field by field."""
    instance = _new(cls)
    _set(instance, "__dict__", values)
    return instance
