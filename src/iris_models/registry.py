"""The Registry: the one object an application holds. Today it fronts the model store (and the
device profile); the catalog, recommendations and downloads join it as they land."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from .store import (
    CachePolicy,
    FsckReport,
    GcOutcome,
    ImportReport,
    InstalledModel,
    ModelRepository,
    Placement,
    Store,
)

if TYPE_CHECKING:
    from typing_extensions import Self

    from .device import DeviceProfile
    from .verify import VerifyResult

__all__ = ["Registry"]


class Registry:
    """Models on this device: ``Registry(home=None)`` opens the store at ``home`` (else
    IRIS_MODELS_HOME, else the user data folder).

    ``device`` is probed on first use (or pass a profile); the store's operations are here
    under the names the design gives them: installed, path, use, remove, gc, verify.
    """

    def __init__(
        self,
        home: str | os.PathLike[str] | None = None,
        *,
        store: Store | None = None,
        device: DeviceProfile | None = None,
        policy: CachePolicy | None = None,
    ):
        self.store = store if store is not None else Store(home, policy=policy)
        if store is not None and policy is not None:
            store.set_policy(policy)
        self._device = device
        self.repository = ModelRepository(self.store)

    @property
    def device(self) -> DeviceProfile:
        """This device's profile (IRIS_MODELS_DEVICE_PROFILE, or probed once and cached)."""
        if self._device is None:
            from . import device

            self._device = device.current()
        return self._device

    def installed(self) -> list[InstalledModel]:
        """Models that are installed and verified."""
        return self.store.list_models(installed_only=True)

    def get(self, model_id: str) -> InstalledModel:
        return self.store.get(model_id)

    def path(self, model_id: str) -> Path:
        return self.store.path(model_id)

    @contextlib.contextmanager
    def use(self, model_id: str) -> Iterator[Path]:
        """``with reg.use(id) as path:`` protected from removal and eviction meanwhile."""
        with self.store.use(model_id) as path:
            yield path

    def remove(self, model_id: str) -> int:
        return self.store.remove(model_id)

    def gc(self, *, dry_run: bool = False, aggressive: bool | None = None) -> GcOutcome:
        return self.store.gc(dry_run=dry_run, aggressive=aggressive)

    def import_path(
        self,
        path: str | os.PathLike[str],
        *,
        placement: Placement | str = Placement.REFERENCE,
        model_id: str | None = None,
    ) -> ImportReport:
        return self.store.import_path(path, placement=placement, model_id=model_id)

    def verify(self, model_id: str) -> list[VerifyResult]:
        """Hashes every file of an installed model again and compares it with the digest
        taken at install; one result per file (``ok`` False on a mismatch)."""
        from .verify import verify

        with self.store.use(model_id):  # installed, and kept from removal while it is read
            model = self.store.get(model_id)
            return [verify(f.path, f.sha256) for f in model.files if f.sha256 is not None]

    def fsck(self, *, repair: bool = False, deep: bool = False) -> FsckReport:
        return self.store.fsck(repair=repair, deep=deep)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
