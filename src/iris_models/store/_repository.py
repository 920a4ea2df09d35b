"""The spec's ModelRepository (all, by id, save, update usage, by category) over a Store,
for code written against that interface."""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING

from ._ids import validate_model_id
from ._store import _log

if TYPE_CHECKING:
    from ._records import InstalledModel
    from ._store import Store

__all__ = ["ModelRepository"]


class ModelRepository:
    """Persistent model records, as ``ModelRepository`` in shared/spec/003 describes them."""

    def __init__(self, store: Store):
        self._store = store

    def all(self) -> list[InstalledModel]:
        return self._store.list_models()

    def by_id(self, model_id: str) -> InstalledModel | None:
        return self._store.find(model_id)

    def by_category(self, category: str) -> list[InstalledModel]:
        return self._store.list_models(category=category)

    def update_usage(self, model_id: str) -> None:
        """Counts one use and stamps the time (the model must be installed)."""
        self._store.record_use(model_id)

    def save(self, model: InstalledModel) -> InstalledModel:
        """Saves a model's description (name, category, source, facts, priority, pin,
        metadata). A new id is registered as DISCOVERED; state, files and usage are the
        store's to change, through install, use and remove."""
        validate_model_id(model.id)
        if self._store.find(model.id) is None:
            self._store.register(
                model.id,
                name=model.name,
                category=model.category,
                source=model.source,
                priority=model.priority,
                metadata=model.metadata,
            )
        with self._store.db.write() as sql:
            sql.execute(
                "UPDATE models SET name = ?, category = ?, source = ?, architecture = ?, "
                "quantization = ?, parameter_count = ?, context_length = ?, priority = ?, "
                "pinned = ?, metadata = ?, updated_at = ? WHERE id = ?",
                (
                    model.name,
                    model.category,
                    model.source,
                    model.architecture,
                    model.quantization,
                    model.parameter_count,
                    model.context_length,
                    int(model.priority),
                    int(model.pinned),
                    json.dumps(dict(model.metadata)),
                    time.time(),
                    model.id,
                ),
            )
            _log(sql, model.id, "saved", detail="description saved through the repository")
        return self._store.get(model.id)
