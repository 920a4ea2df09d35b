"""A download in a process of its own, for tests/test_download_file.py to kill with SIGKILL:
it saves every checkpoint's resume state as JSON, atomically, where the test can read it.

``python tests/download_child.py URL PART STATE --sha256 sha256:... [--connections N] ...``
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from iris_models.download import FileDownload, FileSource, ResumeState, TransferOptions


def save_state(path: Path, state: ResumeState) -> None:
    """Writes the state next to `path`, flushes it to disk and renames it over `path`: a kill
    at any moment leaves either the previous state or this one, never half of one."""
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as out:
        json.dump(state.to_json(), out)
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("part", type=Path)
    parser.add_argument("state", type=Path)
    parser.add_argument("--sha256", required=True)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--checkpoint-bytes", type=int, default=256 * 1024)
    parser.add_argument("--checkpoint-interval-s", type=float, default=0.1)
    parser.add_argument("--buffer-bytes", type=int, default=64 * 1024)
    parser.add_argument("--min-split-bytes", type=int, default=256 * 1024)
    arguments = parser.parse_args()

    options = TransferOptions(
        connections=arguments.connections,
        checkpoint_bytes=arguments.checkpoint_bytes,
        checkpoint_interval_s=arguments.checkpoint_interval_s,
        buffer_bytes=arguments.buffer_bytes,
        min_split_bytes=arguments.min_split_bytes,
        backoff_s=0.01,
        max_backoff_s=0.05,
    )
    download = FileDownload(
        FileSource(urls=[arguments.url], sha256=arguments.sha256),
        arguments.part,
        options=options,
        on_checkpoint=lambda state: save_state(arguments.state, state),
    )
    result = download.run()
    print(result.sha256, flush=True)


if __name__ == "__main__":
    main()
