"""The exceptions iris-models raises, one hierarchy under :class:`IrisModelsError`.

Each class also derives from the built-in exception a caller would expect, so generic
handlers keep working::

    IrisModelsError
     ├── GGUFError (ValueError)              a file is not valid GGUF
     │    ├── GGUFTruncatedError             the file ends before its header or data do
     │    └── GGUFNeedMoreDataError          a buffer holds too few of a file's first bytes
     ├── VerifyError                         verification could not give an answer
     │    ├── DigestFormatError (ValueError) a digest string is malformed
     │    ├── ManifestError (ValueError)     a piece manifest does not fit the file
     │    └── FileChangedError (RuntimeError) the file changed while it was read
     ├── OperationCancelled                  a long operation was cancelled
     ├── DeviceProfileError (ValueError)     a device profile or override is invalid
     ├── CatalogError (ValueError)           a model catalog is invalid
     │    ├── CatalogConflictError           two sources give one id different digests
     │    └── UnknownModelError (LookupError) no catalog describes the id
     ├── NetworkError (OSError)              a request failed (connection, TLS, HTTP status)
     │    └── OfflineError                   IRIS_MODELS_OFFLINE=1 forbids the request
     └── StoreError                          the model store refused or could not do something
          ├── InvalidModelIdError (ValueError)       an id that cannot name a model folder
          ├── ModelNotFoundError (LookupError)       no such model in the store
          ├── ModelExistsError                       the id is already taken
          ├── ModelNotReadyError                     the model is not installed and verified
          ├── ModelInUseError                        a use() lease protects the model
          ├── LifecycleError                         a state change the table forbids
          ├── ImportModelError                       a file or folder cannot be adopted
          ├── StorePolicyError (ValueError)          a cache policy setting is invalid
          ├── InsufficientSpaceError (OSError)       not enough disk for the work asked
          ├── StoreBusyError (TimeoutError)          other processes held the store too long
          ├── StoreCorruptError                      the database is damaged
          │    └── NotAStoreError                    it is another program's database
          ├── StoreVersionError                      the database is from a newer iris-models
          └── StoreReadOnlyError (PermissionError)   the store cannot be written

File-system failures (a missing file, a directory, no permission) are raised as the
standard OSError subclasses, with the path in ``filename``.
"""

from __future__ import annotations

import errno

__all__ = [
    "CatalogConflictError",
    "CatalogError",
    "DeviceProfileError",
    "DigestFormatError",
    "DigestMismatchError",
    "DownloadError",
    "DownloadPaused",
    "FileChangedError",
    "GGUFError",
    "GGUFNeedMoreDataError",
    "GGUFTruncatedError",
    "ImportModelError",
    "InsufficientSpaceError",
    "IntegrityError",
    "InvalidModelIdError",
    "IrisModelsError",
    "LifecycleError",
    "ManifestError",
    "ModelExistsError",
    "ModelInUseError",
    "ModelNotFoundError",
    "ModelNotReadyError",
    "NetworkError",
    "NotAStoreError",
    "OfflineError",
    "OperationCancelled",
    "RemoteChangedError",
    "StoreBusyError",
    "StoreCorruptError",
    "StoreError",
    "StorePolicyError",
    "StoreReadOnlyError",
    "StoreVersionError",
    "UnknownModelError",
    "VerifyError",
]


class IrisModelsError(Exception):
    """Base class of every error iris-models raises on purpose."""


class GGUFError(IrisModelsError, ValueError):
    """A file or buffer is not a valid GGUF file, or the shards of a split model disagree.

    The message names the file and what was wrong; for a fault inside a file it also names
    the byte offset where the offending record or field starts (``offset``; None otherwise).
    """

    def __init__(self, message: str, *, path: str | None = None, offset: int | None = None):
        super().__init__(message)
        self.path = path
        self.offset = offset


class GGUFTruncatedError(GGUFError):
    """The file ends before its header or tensor data does: usually an incomplete download.

    ``bytes_needed`` is the smallest file size that would let parsing go further.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        offset: int | None = None,
        bytes_needed: int | None = None,
    ):
        super().__init__(message, path=path, offset=offset)
        self.bytes_needed = bytes_needed


class GGUFNeedMoreDataError(GGUFError):
    """A buffer holding the first bytes of a file is too short to finish the header.

    ``bytes_needed`` is the least length that lets parsing get past where it stopped; fetch at
    least that much from the start of the file (growing the fetch geometrically) and parse
    again.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        offset: int | None = None,
        bytes_needed: int,
    ):
        super().__init__(message, path=path, offset=offset)
        self.bytes_needed = bytes_needed


class VerifyError(IrisModelsError):
    """Verification could not give an answer (a mismatch is an answer: see VerifyResult)."""

    def __init__(self, message: str, *, path: str | None = None):
        super().__init__(message)
        self.path = path


class DigestFormatError(VerifyError, ValueError):
    """A digest string is not ``algo:hex`` with a known algorithm and the right length."""


class ManifestError(VerifyError, ValueError):
    """A piece manifest is malformed or describes a different file."""


class FileChangedError(VerifyError, RuntimeError):
    """The file's size, modification time or identity changed while it was being read, so
    no digest describes it. Hash it again once nothing is writing to it."""


class OperationCancelled(IrisModelsError):
    """A long-running operation stopped because it was asked to."""


class DeviceProfileError(IrisModelsError, ValueError):
    """A device profile (a JSON file, a shipped profile name) or an override is invalid.

    The message names the field by its path (``cpu.clusters[1].cpus``) and what was wrong.
    """


class CatalogError(IrisModelsError, ValueError):
    """A model catalog is invalid: bad JSON, a schema violation, a duplicate id, an unsafe
    file name or URL, or a conflict between two sources.

    ``source`` names the file or URL, ``json_path`` the place in it (``models.llm[2].fileSize``)
    and ``rule`` the check that failed, where there is one.
    """

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        json_path: str | None = None,
        rule: str | None = None,
    ):
        super().__init__(message)
        self.source = source
        self.json_path = json_path
        self.rule = rule


class CatalogConflictError(CatalogError):
    """Two catalog sources describe the same model id with different digests."""


class UnknownModelError(CatalogError, LookupError):
    """No catalog source describes the model id asked for."""

    def __init__(self, message: str, *, model_id: str):
        super().__init__(message)
        self.model_id = model_id


def _password_hidden(url: str | None) -> str | None:
    """`url` with any password in it shown as ``***``: errors are logged, printed and sent
    on, and must not carry one."""
    if url is None:
        return None
    from ._http import display_url  # here: _http imports this module

    return display_url(url)


class NetworkError(IrisModelsError, OSError):
    """A request failed: no connection, a timeout, a TLS failure or an HTTP error status.

    ``url`` is the address asked for, a password in it shown as ``***``; ``status`` the
    HTTP status where one came back.
    """

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None):
        super().__init__(message)
        self.url = _password_hidden(url)
        self.status = status


class OfflineError(NetworkError):
    """A network request was needed while IRIS_MODELS_OFFLINE=1 forbids them."""


class DownloadError(IrisModelsError):
    """A download did not end in a verified file.

    ``url`` is the address concerned, where there is one, a password in it shown as ``***``.
    """

    def __init__(self, message: str, *, url: str | None = None):
        super().__init__(message)
        self.url = _password_hidden(url)


class DownloadPaused(DownloadError):
    """The download stopped on request (pause, cancel, Ctrl-C); ``reason`` says which. A
    paused one keeps its part file and resume state."""

    def __init__(self, reason: str, *, url: str | None = None):
        super().__init__(f"download {reason}", url=url)
        self.reason = reason


class IntegrityError(DownloadError, ValueError):
    """The bytes are not the file they should be: a digest or size that does not match, or
    no digest at all to check them against (unless an unverified download was allowed)."""


class DigestMismatchError(IntegrityError):
    """The downloaded bytes hash to something else than the expected digest (the whole file,
    or a piece again and again): they are not the file, and are not kept."""


class RemoteChangedError(DownloadError):
    """The file on the server changed while it was downloaded (its ETag or size moved); the
    bytes already fetched belong to the old version."""


class StoreError(IrisModelsError):
    """The model store refused an operation or could not carry it out.

    ``model_id`` names the model concerned, where there is one.
    """

    def __init__(self, message: str, *, model_id: str | None = None):
        super().__init__(message)
        self.model_id = model_id


class InvalidModelIdError(StoreError, ValueError):
    """A model id that cannot safely name a folder: empty, too long, with a path separator,
    ``..``, a leading dot, or characters outside letters, digits and ``._-+``."""


class ModelNotFoundError(StoreError, LookupError):
    """No model with this id is in the store."""

    def __str__(self) -> str:  # LookupError would quote the message like a KeyError key
        return str(self.args[0])


class ModelExistsError(StoreError):
    """A model with this id is already installed (remove it first, or pick another id)."""


class ModelNotReadyError(StoreError):
    """The model is in the store but not usable: still installing, failed, or being removed.
    ``state`` is its lifecycle state."""

    def __init__(self, message: str, *, model_id: str | None = None, state: str | None = None):
        super().__init__(message, model_id=model_id)
        self.state = state


class ModelInUseError(StoreError):
    """A process is using the model (``with store.use(id)``), so it cannot be removed or
    evicted now."""


class LifecycleError(StoreError):
    """A lifecycle change that the transition table does not allow."""

    def __init__(
        self, message: str, *, model_id: str | None = None, from_state: str, to_state: str
    ):
        super().__init__(message, model_id=model_id)
        self.from_state = from_state
        self.to_state = to_state


class ImportModelError(StoreError):
    """A file or folder cannot be adopted into the store (not GGUF, wrong digest, a hard link
    across file systems, ...)."""


class StorePolicyError(StoreError, ValueError):
    """A cache policy setting is invalid: an unknown eviction policy or priority, a negative
    size, a malformed size such as ``12 XB``."""


class InsufficientSpaceError(StoreError, OSError):
    """Not enough free disk for the work asked, even after what eviction may free.

    ``bytes_needed`` and ``bytes_available`` are the figures behind the refusal.
    """

    def __init__(
        self,
        message: str,
        *,
        model_id: str | None = None,
        bytes_needed: int,
        bytes_available: int,
    ):
        StoreError.__init__(self, message, model_id=model_id)
        self.errno = errno.ENOSPC
        self.bytes_needed = bytes_needed
        self.bytes_available = bytes_available

    def __str__(self) -> str:
        return str(self.args[0])


class StoreBusyError(StoreError, TimeoutError):
    """Other processes kept the store's database locked for longer than the busy timeout."""


class StoreCorruptError(StoreError):
    """The store's database file is damaged or is not an iris-models database. Nothing was
    changed; ``iris-models fsck --repair`` moves it aside and rebuilds the store from the
    model files on disk."""


class NotAStoreError(StoreCorruptError):
    """The database file is another program's SQLite database. It is never changed, and
    ``fsck --repair`` does not move it aside: point the store somewhere else."""


class StoreVersionError(StoreError):
    """The store's database was written by a newer iris-models, with a schema this version
    does not know. Nothing was changed; upgrade iris-models to use this store."""


class StoreReadOnlyError(StoreError, PermissionError):
    """The store's folder or database cannot be written by this process."""

    def __str__(self) -> str:
        return str(self.args[0])
