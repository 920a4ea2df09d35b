"""Speed of the catalog and the recommender, each next to a named peer timed in the same run.

1. Cold start: a fresh interpreter imports iris_models, loads the bundled catalog and calls
   Registry.models(); timed inside that process (interpreter start excluded). Peer: the
   same process reading the same file with the stdlib's json. The specification's budget
   for loading its catalog was 3 seconds; it is printed beside. Timed with our modules'
   bytecode compiled, as `pip install` leaves them (and as the stdlib's and msgspec's
   already are): a first warm-up run writes it, even where PYTHONDONTWRITEBYTECODE is set.
   A second row times the same with no bytecode (every import compiled from source, as an
   editable install under PYTHONDONTWRITEBYTECODE pays each time).
2. A generated 10,000-model catalog (every model with its own id and URLs) read from disk,
   checked and turned into descriptors (iris_models.catalog.read_catalog; warm, and the
   first call of the process). Peers: the `jsonschema` library validating the same document
   against the same schema (json parsing included in both), and json.loads alone (the floor
   for any validator written in Python).
3. Recommending over those 10,000 models for a shipped device profile at 4096 tokens
   (memory estimate, fit, speed, score, ranking). Peers: the specification's assessment
   alone (RAM thresholds, class, backends; no estimate), written here as a plain loop; and
   building the result objects recommend returned from their values, with no rule applied
   (the floor for any recommend that returns these frozen dataclasses). A result's reasons
   and speed estimate are made when first read; a last row times recommend with every
   speed estimate read.

Every timed call keeps its result until its time is taken, and includes the young garbage
collection it leaves due (see `settled`).

Run from the repository root (not collected by pytest)::

    pip install -e ".[test]"
    python benchmarks/bench_catalog.py --models 10000 --runs 7
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import gc
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

import iris_models
from _tables import format_table
from _timing import median_ms
from iris_models._frozen import builder
from iris_models._gc import collector_paused
from iris_models.recommend import MemoryEstimate, Recommendation

TARGET_COLD_MS = 50.0
TARGET_LOAD_MS = 300.0
TARGET_RECOMMEND_MS = 100.0
SPEC_BUDGET_MS = 3000.0

COLD_START = """
import time
start = time.perf_counter()
{body}
print((time.perf_counter() - start) * 1000)
"""
OURS_COLD = """
import iris_models
registry = iris_models.Registry()
models = registry.models()
assert models
"""
PEER_COLD = """
import json
document = json.loads(open({bundled!r}, "rb").read())
models = [entry for group in document["models"].values() for entry in group]
assert models
"""


def cold_ms(body: str, runs: int, *, bytecode: bool = True) -> float:
    code = COLD_START.format(body=body)
    env = dict(os.environ)
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"

    def once() -> float:
        command = [sys.executable, "-c", code]
        return float(
            subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
        )

    if bytecode:
        once()  # writes the .pyc files an installed package ships with
    else:  # PYTHONDONTWRITEBYTECODE stops writing, not reading: ours must not be there
        package = Path(iris_models.__file__).parent
        for cache in package.rglob("__pycache__"):
            shutil.rmtree(cache)
    return statistics.median(once() for _ in range(runs))


def settled(result: Any) -> Any:
    """`result`, after the young collection its making left due. read_catalog and recommend
    hold the collector off while they build, so the collection of what they built falls to
    the caller's next allocation; it is part of their cost, and timed with them (the peers,
    which run with the collector on, pay theirs as they go, and get the same call)."""
    gc.collect(0)
    return result


def generated_catalog(count: int, seed: int) -> dict[str, Any]:
    """`count` models cloned from the bundled entries with fresh ids, sizes and shapes."""
    bundled = json.loads((resources.files("iris_models.catalog") / "models.json").read_bytes())
    templates = [entry for group in bundled["models"].values() for entry in group]
    rng = random.Random(seed)
    models: dict[str, list[dict[str, Any]]] = {"llm": [], "embedding": [], "safety": []}
    for index in range(count):
        entry = copy.deepcopy(rng.choice(templates))
        entry["id"] = f"{entry['id']}-{index:05d}"
        # Every model its own URLs, as in a real catalog (and past urlsplit's 128-entry cache).
        if "downloadUrl" in entry:
            entry["downloadUrl"] = entry["downloadUrl"].replace(".gguf", f"-{index:05d}.gguf")
        for item in entry.get("files", ()):
            item["url"] = item["url"].replace(".gguf", f"-{index:05d}.gguf")
            item["name"] = item["name"].replace(".gguf", f"-{index:05d}.gguf")
        if entry.get("fileSize"):
            entry["fileSize"] = int(entry["fileSize"] * rng.uniform(0.5, 2.0))
        if "gguf" in entry:  # vary the shape so the estimates differ per model
            block = entry["gguf"]
            block["weightsBytes"] = int(block["weightsBytes"] * rng.uniform(0.5, 8.0))
        models[entry["type"]].append(entry)
    return {"version": "1.0", "models": models, "categories": bundled["categories"]}


def spec_assessment(models: list[Any], profile: Any) -> list[tuple[int, Any]]:
    """The specification's assessModelCompatibility and sort, without any estimate."""
    from iris_models.recommend import available_backends, optimal_backend

    backends = available_backends(profile)
    optimal = optimal_backend(profile)
    ram = profile.memory.total_bytes
    results = []
    for model in models:
        requirements = model.requirements
        if ram < requirements.min_ram_bytes:
            continue
        score = 100
        if requirements.recommended_ram_bytes and ram < requirements.recommended_ram_bytes:
            score -= 20
        classes = requirements.device_classes
        if classes and profile.device_class.value not in classes:
            score -= 30
        if not set(requirements.supported_backends) & backends:
            continue
        if optimal in requirements.supported_backends:
            score += 10
        results.append((score, model))
    results.sort(key=lambda item: -item[0])
    return results


def result_fields(recommendations: list[Any]) -> list[tuple[Any, ...]]:
    """Each recommendation's field values and its memory estimate's, taken apart (outside
    the timing) for `results_alone`."""
    names = [field.name for field in dataclasses.fields(Recommendation)]
    memory_names = [field.name for field in dataclasses.fields(MemoryEstimate)]
    fields = []
    for each in recommendations:
        memory = each.memory
        fields.append(
            (
                [getattr(each, name) for name in names],
                None if memory is None else [getattr(memory, name) for name in memory_names],
            )
        )
    return fields


def results_alone(fields: list[tuple[Any, ...]]) -> list[Any]:
    """The objects `recommend` returns, built from values already worked out, as recommend
    builds them (iris_models._frozen's builders, the collector held off): no rule applied,
    no note made. The floor for any recommend that hands back these frozen dataclasses."""
    new_memory, new_recommendation = builder(MemoryEstimate), builder(Recommendation)
    memory_at = [field.name for field in dataclasses.fields(Recommendation)].index("memory")
    built = []
    with collector_paused():  # as recommend holds it
        for values, memory in fields:
            if memory is not None:
                values = list(values)
                values[memory_at] = new_memory(*memory)
            built.append(new_recommendation(*values))
    return built


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", default="snapdragon-flagship-phone")
    args = parser.parse_args()

    import jsonschema

    from iris_models import device
    from iris_models.catalog import load_schema, read_catalog
    from iris_models.recommend import recommend

    rows = []
    uncompiled = cold_ms(OURS_COLD, args.runs, bytecode=False)
    ours = cold_ms(OURS_COLD, args.runs)
    bundled = str(resources.files("iris_models.catalog") / "models.json")
    peer = cold_ms(PEER_COLD.replace("{bundled!r}", repr(bundled)), args.runs)
    rows.append(
        [
            "cold: import + bundled catalog + models()",
            f"{ours:.1f}",
            "stdlib json.loads",
            f"{peer:.1f}",
            f"{ours / peer:.2f}x",
            f"< {TARGET_COLD_MS:.0f} (spec budget {SPEC_BUDGET_MS:.0f})",
            "met" if ours < TARGET_COLD_MS else "NOT met",
        ]
    )
    rows.append(
        [
            "  the same, no bytecode (compiled on import)",
            f"{uncompiled:.1f}",
            "stdlib json.loads",
            f"{peer:.1f}",
            f"{uncompiled / peer:.2f}x",
            "",
            "",
        ]
    )

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "catalog.json"
        document = generated_catalog(args.models, args.seed)
        path.write_text(json.dumps(document), encoding="utf-8")
        size_mb = path.stat().st_size / 1e6

        start = time.perf_counter()
        models, _ = settled(read_catalog(path))
        first = (time.perf_counter() - start) * 1000
        warm = median_ms(lambda: settled(read_catalog(path)), args.runs)
        schema = load_schema()
        validator = jsonschema.Draft7Validator(schema)
        peer_load = median_ms(
            lambda: settled(validator.validate(json.loads(path.read_bytes()))),
            max(1, args.runs // 3),
            warmup=0,
        )
        label = f"load + validate {args.models:,} models ({size_mb:.1f} MB)"
        rows.append(
            [
                label,
                f"{warm:.1f}",
                "jsonschema Draft7",
                f"{peer_load:.1f}",
                f"{warm / peer_load:.2f}x",
                f"< {TARGET_LOAD_MS:.0f}",
                "met" if warm < TARGET_LOAD_MS else "NOT met",
            ]
        )
        json_only = median_ms(lambda: settled(json.loads(path.read_bytes())), args.runs)
        rows.append(
            [
                "  the same, against parsing alone",
                f"{warm:.1f}",
                "stdlib json.loads",
                f"{json_only:.1f}",
                f"{warm / json_only:.2f}x",
                "",
                "",
            ]
        )
        rows.append(
            [
                "  the same, first call (imports msgspec, builds the decoder)",
                f"{first:.1f}",
                "",
                "",
                "",
                f"< {TARGET_LOAD_MS:.0f}",
                "met" if first < TARGET_LOAD_MS else "NOT met",
            ]
        )

        profile = device.load_profile(args.profile)
        ours_rec = median_ms(
            lambda: settled(recommend(models, profile, context_length=4096)), args.runs
        )
        peer_rec = median_ms(lambda: settled(spec_assessment(models, profile)), args.runs)
        rows.append(
            [
                f"recommend over {args.models:,} ({args.profile})",
                f"{ours_rec:.1f}",
                "spec's rules only",
                f"{peer_rec:.1f}",
                f"{ours_rec / peer_rec:.2f}x",
                f"< {TARGET_RECOMMEND_MS:.0f}",
                "met" if ours_rec < TARGET_RECOMMEND_MS else "NOT met",
            ]
        )
        made = result_fields(recommend(models, profile, context_length=4096))
        floor = median_ms(lambda: settled(results_alone(made)), args.runs)
        rows.append(
            [
                f"  the same, against building its {len(made):,} results alone",
                f"{ours_rec:.1f}",
                "results, no rules",
                f"{floor:.1f}",
                f"{ours_rec / floor:.2f}x",
                "",
                "",
            ]
        )

        def every_speed_read() -> list[Any]:
            return [each.speed for each in recommend(models, profile, context_length=4096)]

        read_speeds = median_ms(lambda: settled(every_speed_read()), args.runs)
        rows.append(
            [
                "  the same, then every result's speed estimate read (made when first read)",
                f"{read_speeds:.1f}",
                "spec's rules only",
                f"{peer_rec:.1f}",
                f"{read_speeds / peer_rec:.2f}x",
                "",
                "",
            ]
        )

    print(
        format_table(
            ["what (median ms)", "ours", "peer", "peer ms", "ours/peer", "target ms", "target"],
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
