"""A small disk that fills up on purpose: a tmpfs of a few MiB, for the full-disk tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(mount_point: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (mount's notation: ``2m``) mounted at `mount_point` (created) for the
    block, then unmounted. Skips the test where mounting is not allowed (it needs root)."""
    mount_point.mkdir(parents=True, exist_ok=True)
    try:
        mounted = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        pytest.skip(f"cannot mount a small tmpfs: {error}")
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        command = ["umount", str(mount_point)]
        if subprocess.run(command, capture_output=True, timeout=30, check=False).returncode:
            # Still busy (a file a failed test left open): detach it now, gone when freed.
            subprocess.run(["umount", "-l", str(mount_point)], capture_output=True, check=False)
