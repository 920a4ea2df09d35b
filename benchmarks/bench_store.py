"""Speed of the model store with 10,000 installed models: listing, an eviction plan, and a
use() enter/exit, each next to a named peer timed in the same run on the same data.

Peers: listing next to the raw SQLite query that fetches the same rows (the floor any
SQLite-backed store pays) and next to reading one JSON manifest per model (the layout of
stores that keep a sidecar file per model); the eviction plan next to fetching every row
and sorting in Python (what a store without an indexed order does); use() next to the bare
SQLite transaction that counts a use plus a flock pair (its floor).

The store holds one model installed for real (parsed, hashed, moved into place) and 9,999
records written through SQL with the columns install() writes, so that building the store
takes seconds, not the minutes 10,000 fsynced installs would. Run it from the repository
root (not collected by pytest)::

    pip install -e .
    python benchmarks/bench_store.py --models 10000 --runs 15
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _tables import format_table
from _timing import median_ms
from iris_models.store import Store

TARGET_LIST_MS = 100.0
TARGET_PLAN_MS = 50.0
TARGET_USE_MS = 2.0
SAMPLE = Path(__file__).resolve().parent.parent / "src" / "iris_models" / "data" / "sample.gguf"


def build_store(root: Path, count: int) -> Store:
    """One real install, then ``count - 1`` records like it, with spread-out usage."""
    source = root.parent / "source.gguf"
    shutil.copyfile(SAMPLE, source)
    store = Store(root, auto_cleanup=False)
    real = store.get(store.install("real-model", [source]).id)
    now = time.time()
    rng = random.Random(42)
    model_rows = []
    file_rows = []
    for index in range(1, count):
        model_id = f"model-{index:05d}"
        size = rng.randrange(50_000_000, 8_000_000_000)
        installed = now - rng.uniform(0, 365 * 86400)
        last_used = installed + rng.uniform(0, now - installed) if rng.random() < 0.8 else None
        model_rows.append(
            (model_id, model_id, rng.choice(("llm", "embedding", "safety")), "ready", "managed",
             f"https://example.invalid/{model_id}.gguf", real.architecture, real.quantization,
             real.parameter_count, real.context_length, size, rng.choice((0, 1, 1, 1, 2, 3)),
             int(rng.random() < 0.05), installed, installed, installed, last_used,
             rng.randrange(0, 500), "{}")
        )  # fmt: skip
        file_rows.append(
            (model_id, f"{model_id}.gguf", "model", size, f"sha256:{index:064x}", installed)
        )
    with store.db.write() as sql:
        sql.executemany(
            "INSERT INTO models (id, name, category, state, storage, source, architecture, "
            "quantization, parameter_count, context_length, size_bytes, priority, pinned, "
            "created_at, installed_at, updated_at, last_used_at, use_count, metadata) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            model_rows,
        )
        sql.executemany(
            "INSERT INTO files (model_id, rel_path, role, size_bytes, sha256, mtime_ns) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            file_rows,
        )
    return store


def write_json_manifests(store: Store, folder: Path) -> None:
    folder.mkdir()
    for model in store.list_models():
        (folder / f"{model.id}.json").write_text(json.dumps(model.to_dict()))


def read_json_manifests(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(folder.iterdir())]


def raw_listing(path: Path) -> Callable[[], list[Any]]:
    connection = sqlite3.connect(path)

    def run() -> list[Any]:
        return connection.execute(
            "SELECT * FROM models JOIN files ON files.model_id = models.id ORDER BY models.id"
        ).fetchall()

    return run


def naive_plan(path: Path, free_bytes: int) -> Callable[[], list[str]]:
    connection = sqlite3.connect(path)

    def run() -> list[str]:
        rows = connection.execute(
            "SELECT id, size_bytes, priority, pinned, last_used_at, installed_at FROM models"
        ).fetchall()
        rows.sort(key=lambda row: (row[2], row[4] or row[5]))
        chosen, freed = [], 0
        for model_id, size, priority, pinned, _last, _installed in rows:
            if freed >= free_bytes:
                break
            if not pinned and priority < 3:
                chosen.append(model_id)
                freed += size
        return chosen

    return run


def bare_use(path: Path, lock_path: Path) -> Callable[[], None]:
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA synchronous = NORMAL")

    def run() -> None:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(fd, fcntl.LOCK_SH)
        connection.execute("BEGIN IMMEDIATE")
        connection.execute(
            "UPDATE models SET use_count = use_count + 1, last_used_at = ? WHERE id = ?",
            (time.time(), "real-model"),
        )
        connection.execute("COMMIT")
        os.close(fd)

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        root = Path(tmp) / "store"
        start = time.perf_counter()
        store = build_store(root, args.models)
        print(f"built a store of {args.models} models in {time.perf_counter() - start:.1f} s",
              file=sys.stderr)  # fmt: skip
        manifests = Path(tmp) / "manifests"
        write_json_manifests(store, manifests)
        free_bytes = 200_000_000_000  # about 50 models' worth

        def use_once() -> None:
            with store.use("real-model"):
                pass

        rows = []
        ours = median_ms(store.list_models, args.runs)
        raw = median_ms(raw_listing(store.db.path), args.runs)
        sidecar = median_ms(lambda: read_json_manifests(manifests), args.runs)
        rows.append(("list_models()", ours, "raw SQLite rows", raw, TARGET_LIST_MS))
        rows.append(("list_models()", ours, "JSON file per model", sidecar, TARGET_LIST_MS))
        plan = store.plan_eviction(free_bytes=free_bytes)
        ours = median_ms(lambda: store.plan_eviction(free_bytes=free_bytes), args.runs)
        naive = median_ms(naive_plan(store.db.path, free_bytes), args.runs)
        rows.append(("plan_eviction()", ours, "fetch all + sort", naive, TARGET_PLAN_MS))
        use_runs = args.runs * 20
        ours = median_ms(use_once, use_runs, warmup=5)
        bare = median_ms(bare_use(store.db.path, root / ".locks" / "bare.lock"), use_runs)
        rows.append(("use() enter+exit", ours, "bare UPDATE + flock", bare, TARGET_USE_MS))
        store.close()

    table = [
        (name, f"{ours_ms:.2f}", peer, f"{peer_ms:.2f}", f"{ours_ms / peer_ms:.2f}",
         f"< {target:g}", "yes" if ours_ms < target else "NO")
        for name, ours_ms, peer, peer_ms, target in rows
    ]  # fmt: skip
    headers = ("operation", "iris ms", "peer", "peer ms", "iris/peer", "target ms", "met")
    print(f"{args.models} models; median of {args.runs} runs ({use_runs} for use())")
    print(f"the plan evicts {len(plan.evictions)} models for {plan.bytes_to_free} bytes")
    print(format_table(headers, table))
    return 0


if __name__ == "__main__":
    sys.exit(main())
