"""Bad input for the GGUF header parser: the exploit corpus, truncation and corruption at every
byte, foreign formats, file-system errors, partial buffers and huge claims in tiny files."""

from __future__ import annotations

import faulthandler
import gzip
import io
import json
import os
import random
import stat
import struct
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tests.gguf_bytes import (
    ARCH,
    KV,
    Array,
    ExploitCase,
    GGUFBuilder,
    ValueType,
    build_file,
    exploit_cases,
    small_model,
)

from iris_models import errors, gguf
from iris_models.errors import GGUFError, GGUFNeedMoreDataError, GGUFTruncatedError

CASES = exploit_cases()

# The valid files every-offset tests walk: each version and byte order the parser reads.
SMALL_MODELS = {
    "v3-little-endian": small_model(),
    "v3-big-endian": small_model(big_endian=True),
    "v2": small_model(version=2),
    "v1": small_model(version=1),
}


def touch_everything(model: gguf.GGUFFile) -> None:
    """Read every public view of a parse, so that the lazy paths (string arrays, numpy views,
    nested arrays, the summary) run on the same bytes the parser accepted."""

    def materialize(value: Any) -> None:
        if isinstance(value, gguf.StringArray):
            assert len(value.tolist()) == len(list(value.iter_raw())) == len(value)
        elif isinstance(value, np.ndarray):
            value.tolist()
        elif isinstance(value, tuple):
            for item in value:
                materialize(item)

    for field in model.fields.values():
        materialize(field.value)
    for tensor in model.tensors:
        assert len(tensor.numpy_shape) == len(tensor.shape)
    assert all(isinstance(warning, str) for warning in model.warnings)
    repr(model)
    model.summary().to_dict()


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# -- (a) the exploit corpus ------------------------------------------------------------------


def test_exploit_case_ids_are_unique_and_usable_as_file_names() -> None:
    ids = [case.id for case in CASES]
    assert len(ids) == len(set(ids))
    assert all(set(case_id) <= set("abcdefghijklmnopqrstuvwxyz0123456789_.+^-") for case_id in ids)


@pytest.mark.parametrize("via", ["open", "parse"])
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_exploit_case_parses_or_raises_exactly_the_expected_error(
    case: ExploitCase, via: str, tmp_path: Path
) -> None:
    if via == "open":
        path = _write(tmp_path, "case.gguf", case.data)
        name = str(path)

        def run() -> gguf.GGUFFile:
            return gguf.open(path)

    else:
        name = "case.gguf"

        def run() -> gguf.GGUFFile:
            return gguf.parse(case.data, file_size=len(case.data), name=name)

    expected = case.expected
    if expected.error is None:
        with run() as model:
            touch_everything(model)
            if expected.says is None:
                assert model.warnings == ()
            else:
                assert any(expected.says in warning for warning in model.warnings), model.warnings
        return

    with pytest.raises(GGUFError) as raised:
        run()
    error = raised.value
    message = str(error)
    assert type(error) is getattr(errors, expected.error), message
    assert isinstance(error.offset, int)
    assert f"byte {error.offset}:" in message
    if expected.offset is not None:
        assert error.offset == expected.offset, message
    assert name in message
    assert error.path == name
    assert expected.says is not None
    assert expected.says in message
    assert "\n" not in message
    # Hostile names are shortened in messages; the rest is a sentence, not a dump.
    assert len(message) < len(name) + 400
    if isinstance(error, GGUFTruncatedError):
        assert error.bytes_needed is not None
        assert error.bytes_needed > len(case.data)


def test_big_endian_and_v1_files_report_what_they_are() -> None:
    # The exploit corpus only says these parse; the values must also be read correctly.
    for built in (small_model(big_endian=True), small_model(version=1)):
        model = gguf.parse(built.data, file_size=len(built.data))
        assert model.endianness == ("big" if built.big_endian else "little")
        assert model.version == built.version
        assert model.metadata["llama.context_length"] == 4096
        assert model.metadata["test.i64"] == -(2**40)
        assert model.metadata["tokenizer.ggml.token_type"].tolist() == [3, 1, -1]
        assert model.data_offset == built.data_offset


def test_vocab_only_file_has_its_data_section_at_the_end_of_its_kvs() -> None:
    # llama.cpp does not pad a file without tensors; trailing bytes do not move the offset.
    built = build_file([ARCH, KV("tokenizer.ggml.model", ValueType.STRING, "gpt2")])
    for data in (built.data, built.data + bytes(-len(built.data) % 32)):
        model = gguf.parse(data, file_size=len(data))
        assert model.data_offset == built.end_of_kvs == len(built.data)
        assert model.shards[0].data_size == 0


def test_warnings_past_the_cap_are_counted_not_kept() -> None:
    # A hostile file cannot grow the warning list without bound.
    kvs = [KV(f"caf\xe9.{i}", ValueType.UINT8, 1) for i in range(100)]
    model = gguf.parse(build_file(kvs).data)
    assert len(model.warnings) == 65
    assert model.warnings[-1] == "<buffer>: 36 more warnings"


def test_unknown_tensor_type_is_listed_with_unknown_size() -> None:
    data = next(case.data for case in CASES if case.id == "tensor-type-0x2b-unknown")
    (tensor,) = gguf.parse(data, file_size=len(data)).tensors
    assert (tensor.type, tensor.type_id, tensor.nbytes) == ("unknown(43)", 43, None)


# -- (b) truncation at every offset ---------------------------------------------------------


@pytest.mark.parametrize("variant", list(SMALL_MODELS))
def test_every_truncation_of_a_valid_file_raises_truncated_error(variant: str) -> None:
    full = SMALL_MODELS[variant].data
    wrong = []
    for length in range(len(full)):
        try:
            gguf.parse(full[:length], file_size=length)
        except GGUFTruncatedError as error:
            needed = error.bytes_needed
            # bytes_needed is a size that lets the walk go on: more than we had, and never
            # more than the real file holds.
            if needed is None or not length < needed <= len(full):
                wrong.append((length, f"bytes_needed={needed}"))
        except Exception as error:  # noqa: BLE001 - any other outcome is what we report
            wrong.append((length, repr(error)))
        else:
            wrong.append((length, "parsed"))
    assert wrong == []


def test_every_truncation_of_a_file_on_disk_raises_truncated_error(tmp_path: Path) -> None:
    full = SMALL_MODELS["v3-little-endian"].data
    path = tmp_path / "cut.gguf"
    wrong = []
    for length in range(len(full)):
        path.write_bytes(full[:length])
        try:
            gguf.open(path)
        except GGUFTruncatedError as error:
            if not (error.bytes_needed or 0) > length or str(path) not in str(error):
                wrong.append((length, str(error)))
        except Exception as error:  # noqa: BLE001 - any other outcome is what we report
            wrong.append((length, repr(error)))
        else:
            wrong.append((length, "parsed"))
    assert wrong == []


# -- (c) single-byte corruption at every offset ------------------------------------------------


def _replacements(original: int) -> set[int]:
    return {0x00, 0xFF, 0x80, 0x7F, original ^ 0x01, original ^ 0x80} - {original}


@pytest.mark.parametrize("variant", ["v3-little-endian", "v3-big-endian", "v1"])
def test_single_byte_corruption_anywhere_parses_or_raises_gguf_error(variant: str) -> None:
    full = SMALL_MODELS[variant].data
    unexpected = []
    # A hang would stall the whole run; dump the stack and exit instead.
    faulthandler.dump_traceback_later(120, exit=True)
    try:
        for offset in range(len(full)):
            for value in sorted(_replacements(full[offset])):
                data = bytearray(full)
                data[offset] = value
                for file_size in (len(data), None):  # a whole file, and a buffer's first bytes
                    try:
                        with gguf.parse(bytes(data), file_size=file_size) as model:
                            touch_everything(model)
                    except GGUFError:
                        pass
                    except Exception as error:  # noqa: BLE001 - any other outcome is what we report
                        unexpected.append((offset, value, file_size, repr(error)))
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert unexpected == []


# -- (d) files that are not GGUF at all ---------------------------------------------------------


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02}q\x00.")
    return buffer.getvalue()


def _safetensors_bytes() -> bytes:
    header = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
    return struct.pack("<Q", len(header)) + header + bytes(8)


FOREIGN_FILES = {
    "zero-length": (b"", GGUFTruncatedError, "the file is empty"),
    "random-bytes": (
        random.Random(20261123).randbytes(4096),
        GGUFError,
        'does not start with the GGUF magic bytes "GGUF"',
    ),
    "safetensors": (_safetensors_bytes(), GGUFError, "safetensors file"),
    "zip": (_zip_bytes(), GGUFError, "zip archive"),
    "gzip": (gzip.compress(small_model().data), GGUFError, "gzip-compressed"),
    "html-error-page": (
        b"<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head></html>\n",
        GGUFError,
        "HTML page",
    ),
    "git-lfs-pointer": (
        (
            b"version https://git-lfs.github.com/spec/v1\n"
            b"oid sha256:a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818\n"
            b"size 253113024\n"
        ),
        GGUFError,
        "Git LFS pointer",
    ),
    # Legacy llama.cpp magics, stored as little-endian u32: 'ggjt', 'ggmf', 'ggml'.
    "legacy-ggjt": (b"tjgg" + struct.pack("<I", 3) + bytes(64), GGUFError, "legacy GGML"),
    "legacy-ggmf": (b"fmgg" + struct.pack("<I", 1) + bytes(64), GGUFError, "legacy GGML"),
    "legacy-ggml": (b"lmgg" + bytes(64), GGUFError, "legacy GGML"),
    "json": (b'{"error": "Repository not found"}', GGUFError, "JSON document"),
}


@pytest.mark.parametrize("kind", list(FOREIGN_FILES))
def test_non_gguf_file_gets_one_line_saying_what_it_is(kind: str, tmp_path: Path) -> None:
    data, error_class, says = FOREIGN_FILES[kind]
    path = _write(tmp_path, f"{kind}.gguf", data)
    with pytest.raises(GGUFError) as raised:
        gguf.open(path)
    message = str(raised.value)
    assert type(raised.value) is error_class
    assert says in message
    assert message.startswith(f"{path}: byte 0: ")
    assert "\n" not in message
    # The same bytes in memory get the same verdict.
    with pytest.raises(error_class, match="byte 0: ") as from_buffer:
        gguf.parse(data, file_size=len(data))
    assert says in str(from_buffer.value)


def test_non_gguf_prefix_in_a_buffer_is_rejected_without_asking_for_more() -> None:
    # Four bytes are enough to see the magic is wrong: no NeedMoreData for foreign files.
    for kind in ("zip", "gzip", "html-error-page", "git-lfs-pointer", "legacy-ggjt"):
        data = FOREIGN_FILES[kind][0]
        with pytest.raises(GGUFError) as raised:
            gguf.parse(data[:16])
        assert type(raised.value) is GGUFError


# -- (e) the file system -------------------------------------------------------------------------


def test_directory_raises_is_a_directory_error(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError) as raised:
        gguf.open(tmp_path)
    assert raised.value.filename == str(tmp_path)


def test_missing_path_raises_file_not_found_error(tmp_path: Path) -> None:
    path = tmp_path / "missing.gguf"
    with pytest.raises(FileNotFoundError) as raised:
        gguf.open(path)
    assert raised.value.filename == str(path)


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read a chmod 000 file"
)
def test_unreadable_file_raises_permission_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "locked.gguf", small_model().data)
    path.chmod(0)
    try:
        with pytest.raises(PermissionError) as raised:
            gguf.open(path)
        assert raised.value.filename == str(path)
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


@pytest.mark.skipif(not Path("/dev/null").exists(), reason="needs /dev/null")
def test_character_device_raises_os_error() -> None:
    with pytest.raises(OSError, match="/dev/null") as raised:
        gguf.open("/dev/null")
    assert raised.value.filename == "/dev/null"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_named_pipe_raises_os_error_instead_of_blocking(tmp_path: Path) -> None:
    # open(2) on a FIFO waits for a writer; in a child process so a hang cannot stall the run.
    fifo = tmp_path / "model.gguf"
    os.mkfifo(fifo)
    script = textwrap.dedent(
        f"""
        import iris_models.gguf
        try:
            iris_models.gguf.open({str(fifo)!r})
        except OSError as error:
            print(type(error).__name__)
        """
    )
    try:
        done = subprocess.run(
            [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=5
        )
    except subprocess.TimeoutExpired:
        pytest.fail("iris_models.gguf.open() blocked on a named pipe with no writer")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "OSError"


# -- (f) buffers holding a file's first bytes ------------------------------------------------


@pytest.mark.parametrize("variant", list(SMALL_MODELS))
def test_every_header_prefix_asks_for_more_data_never_truncated(variant: str) -> None:
    built = SMALL_MODELS[variant]
    full = built.data
    wrong = []
    for length in range(built.end_of_tensor_infos):
        for file_size in (None, len(full)):
            try:
                gguf.parse(full[:length], file_size=file_size)
            except GGUFNeedMoreDataError as error:
                if not length < error.bytes_needed <= built.end_of_tensor_infos:
                    wrong.append((length, file_size, f"bytes_needed={error.bytes_needed}"))
            except Exception as error:  # noqa: BLE001 - any other outcome is what we report
                wrong.append((length, file_size, repr(error)))
            else:
                wrong.append((length, file_size, "parsed"))
    assert wrong == []


def test_prefix_holding_the_whole_header_parses_like_the_whole_file() -> None:
    built = SMALL_MODELS["v3-little-endian"]
    whole = gguf.parse(built.data)
    for length in (built.end_of_tensor_infos, built.data_offset, len(built.data) - 1):
        for file_size in (None, len(built.data)):
            model = gguf.parse(built.data[:length], file_size=file_size)
            assert model.data_offset == whole.data_offset == built.data_offset
            assert model.tensors == whole.tensors


def test_prefix_whose_claims_exceed_the_given_file_size_is_truncated_not_need_more() -> None:
    # The string claims 1000 bytes: past the end of a 200-byte file, whatever the buffer holds.
    data = GGUFBuilder().header(0, 1).string("general.name").u32(ValueType.STRING)
    data = data.string(b"abc", length=1000).to_bytes()
    with pytest.raises(GGUFTruncatedError) as truncated:
        gguf.parse(data, file_size=200)
    assert truncated.value.bytes_needed == len(data) - 3 + 1000
    with pytest.raises(GGUFNeedMoreDataError) as need_more:
        gguf.parse(data)
    assert need_more.value.bytes_needed == len(data) - 3 + 1000
    with pytest.raises(GGUFNeedMoreDataError):
        gguf.parse(data, file_size=2000)


def test_file_size_shorter_than_the_buffer_hides_the_bytes_past_it() -> None:
    full = small_model().data
    with pytest.raises(GGUFTruncatedError):
        gguf.parse(full, file_size=len(full) - 1)
    with pytest.raises(GGUFTruncatedError, match="the file is empty"):
        gguf.parse(full, file_size=0)


def test_parse_with_a_negative_file_size_raises_a_short_error() -> None:
    # A bad argument must not echo the whole buffer back in the message.
    data = small_model().data + bytes(1 << 16)
    with pytest.raises((ValueError, TypeError)) as raised:
        gguf.parse(data, file_size=-1)
    assert len(str(raised.value)) < 1000


# -- (g) huge claims in tiny buffers -------------------------------------------------------------


def _huge_claims() -> dict[str, bytes]:
    """Buffers of a few dozen bytes claiming as much as the limits allow."""

    def one_value(write: Any) -> bytes:
        b = GGUFBuilder().header(0, 1).string("k").u32(ValueType.ARRAY)
        return write(b).zeros(16).to_bytes()

    return {
        "n_kv-2^20": GGUFBuilder().header(0, 2**20).zeros(16).to_bytes(),
        "n_tensors-2^20": GGUFBuilder().header(2**20, 0).zeros(16).to_bytes(),
        "string-2^30": GGUFBuilder()
        .header(0, 1)
        .string("k")
        .u32(ValueType.STRING)
        .string(b"", length=2**30)
        .zeros(16)
        .to_bytes(),
        "u64-array-2^30": one_value(lambda b: b.u32(ValueType.UINT64).length(2**30)),
        "string-array-2^30": one_value(lambda b: b.u32(ValueType.STRING).length(2**30)),
        "nested-array-2^30": one_value(lambda b: b.u32(ValueType.ARRAY).length(2**30)),
    }


HUGE_CLAIMS = _huge_claims()


@pytest.mark.parametrize("claim", list(HUGE_CLAIMS))
def test_huge_claim_in_a_tiny_buffer_fails_at_once(claim: str) -> None:
    data = HUGE_CLAIMS[claim]
    for file_size in (None, 2**40):  # unknown size, and a remote file large enough to hold it
        with pytest.raises(GGUFNeedMoreDataError) as raised:
            gguf.parse(data, file_size=file_size)
        # The claim is checked whole before any walk: every case claims at least 2^20 records
        # of 8 or more bytes (or a 2^30-byte string), and the parser asks for all of it at
        # once, where an element-by-element walk would ask for a few bytes more.
        assert raised.value.bytes_needed >= 2**20 * 8
    with pytest.raises(GGUFTruncatedError):
        gguf.parse(data, file_size=len(data))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and ru_maxrss in KiB")
def test_huge_claims_do_not_allocate_memory_in_proportion() -> None:
    # A child process with its address space capped 256 MiB above what it already uses: an
    # allocation sized from a claim (GiBs) fails there, and touched pages show in ru_maxrss.
    script = textwrap.dedent(
        """
        import resource
        from iris_models import gguf
        from iris_models.errors import GGUFError
        claims = {claims!r}
        with open("/proc/self/statm") as statm:
            used = int(statm.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + (256 << 20), resource.RLIM_INFINITY))
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for data in claims.values():
            for file_size in (None, 1 << 40):
                try:
                    gguf.parse(data, file_size=file_size)
                except GGUFError:
                    pass
        grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(grown_kib)
        """
    ).format(claims=HUGE_CLAIMS)
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) < 16 * 1024


def test_huge_array_count_within_the_bytes_present_is_walked_not_materialized() -> None:
    # 2^16 empty strings really are present: the walk indexes them sparsely.
    count = 2**16
    b = GGUFBuilder().header(0, 1).string("tokenizer.ggml.tokens").u32(ValueType.ARRAY)
    data = b.u32(ValueType.STRING).length(count).zeros(8 * count).to_bytes()
    model = gguf.parse(data, file_size=len(data))
    tokens = model.metadata["tokenizer.ggml.tokens"]
    assert len(tokens) == count
    assert tokens[count - 1] == ""


def test_array_of_many_empty_arrays_is_bounded_by_the_bytes_present() -> None:
    count = 2**14
    value = Array(ValueType.ARRAY, [Array(ValueType.UINT8)] * count)
    data = build_file([KV("test.nested", ValueType.ARRAY, value)]).data
    model = gguf.parse(data, file_size=len(data))
    assert len(model.metadata["test.nested"]) == count
