"""The isolated GPU probe: ``python -m iris_models.device._gpu_child API`` probes one API
(vulkan, opencl or cuda) and prints the report as JSON.

It runs in its own process because GPU drivers can crash or hang inside the loader; the
parent (:mod:`._gpu`) survives either and reports it. IRIS_MODELS_<API>_LIBRARY, a list of
library names or paths separated by the OS path separator, replaces the default loaders.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

APIS = ("vulkan", "opencl", "cuda")


def library_override(api: str) -> list[str] | None:
    value = os.environ.get(f"IRIS_MODELS_{api.upper()}_LIBRARY")
    if value is None:
        return None
    return [part for part in value.split(os.pathsep) if part]


def run_probe(api: str) -> dict[str, Any]:
    """The core's report for `api`, with the library override applied; in this process."""
    from .. import _core

    probe = {"vulkan": _core.probe_vulkan, "opencl": _core.probe_opencl, "cuda": _core.probe_cuda}
    return probe[api](library_override(api))


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in APIS:
        sys.stderr.write(f"usage: python -m iris_models.device._gpu_child {{{','.join(APIS)}}}\n")
        return 2
    sys.stdout.write(json.dumps(run_probe(argv[1])))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
