"""The ``iris-models`` command line. Subcommands import their modules lazily, so that
``iris-models --help`` stays fast."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["main"]

# name -> (module under iris_models.cli, one-line help)
_COMMANDS: dict[str, tuple[str, str]] = {
    "inspect": ("inspect_cmd", "show what a GGUF file holds: summary, metadata, tensors"),
    "hash": ("hash_cmd", "print files' digests (sha256, or an xxh128 / blake3 seal)"),
    "verify": ("verify_cmd", "check files against digests or piece manifests"),
    "device": ("device_cmd", "show this device's CPU, memory, GPUs, backends and class"),
    "ls": ("ls_cmd", "list the models in the store"),
    "path": ("path_cmd", "print the file path of an installed model"),
    "import": ("import_cmd", "adopt GGUF files on disk, a Hugging Face cache or Ollama models"),
    "rm": ("rm_cmd", "remove models and delete their files"),
    "pin": ("pin_cmd", "never evict a model"),
    "unpin": ("pin_cmd", "let eviction consider a model again"),
    "priority": ("pin_cmd", "set a model's eviction priority (low/normal/high/critical)"),
    "gc": ("gc_cmd", "enforce the cache policy now (--dry-run prints the plan)"),
    "stats": ("stats_cmd", "bytes by model and category, uses, evictions"),
    "fsck": ("fsck_cmd", "check the store against the disk; --repair fixes it"),
    "policy": ("policy_cmd", "show or set the cache policy"),
    "list": ("catalog_cmd", "list the catalog's models"),
    "search": ("catalog_cmd", "find catalog models by words in their id, name or description"),
    "show": ("catalog_cmd", "show one catalog model: files, requirements, header facts"),
    "recommend": ("recommend_cmd", "rank catalog models for this device, with the reasons"),
    "catalog": ("catalog_cmd", "validate catalog files, refresh remote catalogs"),
    "pull": ("pull_cmd", "download catalog models into the store, verified as they land"),
    "downloads": ("pull_cmd", "list downloads under way or paused; --resume runs them"),
}


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="iris-models",
        description="Keep GGUF language models on the devices that run them.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--catalog",
        dest="catalogs",
        action="append",
        default=[],
        metavar="FILE|URL",
        help="add a catalog over the bundled one (repeatable; later ones win)",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="make no network calls (as IRIS_MODELS_OFFLINE=1): cached catalogs only",
    )
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    subcommands.required = True
    for name, (module_name, help_text) in _COMMANDS.items():
        module = importlib.import_module(f"{__name__}.{module_name}")
        sub = subcommands.add_parser(name, help=help_text, description=module.__doc__)
        # A module serving several commands names its functions after each one.
        configure = getattr(module, f"configure_{name}", None) or module.configure
        configure(sub)
        sub.set_defaults(handler=getattr(module, f"run_{name}", None) or module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the process exit status."""
    from ._output import run_guarded

    args = build_parser().parse_args(argv)
    if not args.offline:
        return run_guarded(args.handler, args)
    import os

    # For this command only: main() also runs in-process (tests, embedding applications).
    previous = os.environ.get("IRIS_MODELS_OFFLINE")
    os.environ["IRIS_MODELS_OFFLINE"] = "1"
    try:
        return run_guarded(args.handler, args)
    finally:
        if previous is None:
            del os.environ["IRIS_MODELS_OFFLINE"]
        else:
            os.environ["IRIS_MODELS_OFFLINE"] = previous


if __name__ == "__main__":
    sys.exit(main())
