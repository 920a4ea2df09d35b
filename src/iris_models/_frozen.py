"""Building frozen dataclasses in bulk (a large catalog, a recommendation over it, a store
listing)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["builder"]

_D = TypeVar("_D")
# The builder's own names; a field may not take one.
_LOCALS = frozenset({"_cls", "_new", "_instance", "_namespace"})


def builder(cls: type[_D]) -> Callable[..., _D]:
    """A function that builds a `cls` from every one of its fields, in field order, for
    values already checked, in a fraction of ``cls(...)``'s time.

    A frozen dataclass's __init__ sets each field through object.__setattr__, which was a
    third of building a 10,000-model catalog. The builder stores the fields straight into
    the instance's namespace, in field order, as __init__ would have: the namespace stays a
    dict that shares its keys with every other instance of the class, a third of the size
    of a dict of its own. A __post_init__ is not run: a caller whose class has one calls it.

    The fields are positional: matching 22 keywords cost more than the stores (measured).
    Callers write one argument per line with the field's name beside it, and the tests
    compare the results with normal constructions, field by field."""
    names = [field.name for field in dataclasses.fields(cls)]  # type: ignore[arg-type]
    clashes = _LOCALS.intersection(names)
    if clashes:
        message = f"{cls.__name__} has fields named like the builder's locals: {sorted(clashes)}"
        raise ValueError(message)
    stores = "".join(f"    _namespace[{name!r}] = {name}\n" for name in names)
    source = (
        f"def build({', '.join(names)}):\n"
        "    _instance = _new(_cls)\n"
        "    _namespace = _instance.__dict__\n"
        f"{stores}"
        "    return _instance\n"
    )
    # Generated as dataclasses generates __init__: one function per class, its body the
    # stores written out (a loop over the fields would cost more than it saves).
    scope: dict[str, Any] = {"_cls": cls, "_new": object.__new__}
    exec(source, scope)  # noqa: S102 - the source is built from the class's own field names
    build: Callable[..., _D] = scope["build"]
    build.__qualname__ = f"builder({cls.__qualname__})"
    return build
