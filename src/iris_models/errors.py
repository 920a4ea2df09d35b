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
     └── DeviceProfileError (ValueError)     a device profile or override is invalid

File-system failures (a missing file, a directory, no permission) are raised as the
standard OSError subclasses, with the path in ``filename``.
"""

from __future__ import annotations

__all__ = [
    "DeviceProfileError",
    "DigestFormatError",
    "FileChangedError",
    "GGUFError",
    "GGUFNeedMoreDataError",
    "GGUFTruncatedError",
    "IrisModelsError",
    "ManifestError",
    "OperationCancelled",
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
