"""iris_models.verify: SHA-256 on every CPU backend against published vectors and hashlib,
file digests, piece manifests, verify()/verify_many(), and files that change or are not files."""

from __future__ import annotations

import array
import dataclasses
import hashlib
import json
import os
import random
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import blake3
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from iris_models import verify
from iris_models.errors import (
    DigestFormatError,
    FileChangedError,
    IrisModelsError,
    ManifestError,
    VerifyError,
)
from iris_models.verify import Digest, Manifest, VerifyResult

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
READ_CHUNK = 4 * MiB  # the core's read size; file sizes around it cross a read boundary

BACKENDS = verify.sha256_backends()


def random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def hashlib_of(algorithm: str, data: bytes) -> str:
    if algorithm == "sha256":
        return hashlib.sha256(data).hexdigest()
    if algorithm == "xxh128":
        return xxhash.xxh3_128(data).hexdigest()
    assert algorithm == "blake3"
    return blake3.blake3(data).hexdigest()


def expected_range(offset: int, size: int, piece_size: int) -> tuple[int, int]:
    start = offset // piece_size * piece_size
    return (start, min(start + piece_size, size))


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as file:
        file.seek(offset)
        byte = file.read(1)
        file.seek(offset)
        file.write(bytes([byte[0] ^ 0x01]))


def assert_progress_well_formed(calls: list[tuple[int, int]], total: int | None = None) -> None:
    assert calls, "on_progress was never called"
    done_values = [done for done, _ in calls]
    assert done_values == sorted(done_values), f"bytes_done went backwards: {calls}"
    assert all(0 <= done <= reported_total for done, reported_total in calls), calls
    final_done, final_total = calls[-1]
    assert final_done == final_total
    if total is not None:
        assert final_total == total


# -- SHA-256 known answers (FIPS 180-4 examples, NIST CAVP) on every backend -----------------

NIST_VECTORS = {
    "abc": (b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    "empty": (b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    "448-bit": (
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ),
    "896-bit": (
        (
            b"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmno"
            b"ijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu"
        ),
        "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1",
    ),
    "million-a": (
        b"a" * 1_000_000,
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
    ),
}


def test_portable_backend_is_always_available() -> None:
    assert "portable" in BACKENDS
    assert len(set(BACKENDS)) == len(BACKENDS)


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def test_cpu_with_sha_extensions_offers_the_accelerated_backend() -> None:
    flags = cpu_flags()
    if "sha_ni" in flags:
        assert "sha-ni" in BACKENDS
    elif "sha2" in flags:  # ARMv8 cryptography extensions
        assert len(BACKENDS) > 1
    else:
        pytest.skip("this CPU has no SHA extensions")


def test_unknown_backend_name_is_rejected_not_silently_replaced() -> None:
    # If an unknown name fell back to the default, the per-backend tests below would prove
    # nothing about the backend they name.
    with pytest.raises(ValueError, match="no-such-backend"):
        verify.sha256_bytes(b"abc", backend="no-such-backend")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(("message", "digest"), NIST_VECTORS.values(), ids=NIST_VECTORS.keys())
def test_sha256_matches_published_vector(backend: str, message: bytes, digest: str) -> None:
    assert hashlib.sha256(message).hexdigest() == digest  # guards the table itself
    assert verify.sha256_bytes(message, backend) == digest


@pytest.mark.parametrize("backend", BACKENDS)
def test_sha256_bytes_hashes_multi_byte_items_as_their_bytes(backend: str) -> None:
    words = array.array("I", range(1000))  # 4-byte items: 4000 bytes, not 1000
    assert verify.sha256_bytes(words, backend) == hashlib.sha256(words.tobytes()).hexdigest()


def test_sha256_bytes_refuses_strided_buffers_instead_of_hashing_the_wrong_bytes() -> None:
    strided = memoryview(bytes(range(256)))[::2]
    with pytest.raises((ValueError, TypeError, BufferError)):
        verify.sha256_bytes(strided)


def test_sha256_bytes_without_backend_uses_a_correct_one() -> None:
    message, digest = NIST_VECTORS["448-bit"]
    assert verify.sha256_bytes(message) == digest
    assert verify.sha256_bytes(message, None) == digest


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_length_up_to_300_matches_hashlib(backend: str) -> None:
    data = random_bytes(300, seed=1)
    for length in range(301):
        assert (
            verify.sha256_bytes(data[:length], backend) == hashlib.sha256(data[:length]).hexdigest()
        ), f"length {length}"


# Block and padding edges (55/56/64 bytes per block) at many multiples, and random lengths.
EDGE_LENGTHS = sorted(
    {n * 64 + d for n in (1, 2, 7, 63, 64, 1023, 16383) for d in (-9, -8, -1, 0, 1, 55, 56)}
    | {random.Random(2).randrange(300, MiB + 4096) for _ in range(12)}
    | {MiB}
)


@pytest.mark.parametrize("backend", BACKENDS)
def test_long_and_random_lengths_match_hashlib(backend: str) -> None:
    data = random_bytes(max(EDGE_LENGTHS) + 3, seed=3)
    for length in EDGE_LENGTHS:
        assert (
            verify.sha256_bytes(data[:length], backend) == hashlib.sha256(data[:length]).hexdigest()
        ), f"length {length}"


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("start", [1, 3, 7, 13], ids=lambda s: f"offset{s}")
def test_unaligned_buffers_hash_like_aligned_ones(backend: str, start: int) -> None:
    data = bytearray(random_bytes(5000, seed=4))
    view = memoryview(data)[start : start + 4096 + 17]
    assert verify.sha256_bytes(view, backend) == hashlib.sha256(view).hexdigest()


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    "make", [bytes, bytearray, memoryview], ids=["bytes", "bytearray", "memoryview"]
)
def test_sha256_bytes_accepts_bytes_like_objects(
    backend: str, make: Callable[[bytes], Any]
) -> None:
    message, digest = NIST_VECTORS["896-bit"]
    assert verify.sha256_bytes(make(message), backend) == digest


def test_all_backends_agree_with_each_other() -> None:
    rng = random.Random(5)
    inputs = [random_bytes(rng.randrange(0, 200_000), seed=i) for i in range(20)]
    for data in inputs:
        digests = {backend: verify.sha256_bytes(data, backend) for backend in BACKENDS}
        assert len(set(digests.values())) == 1, (len(data), digests)


@settings(max_examples=150, deadline=None)
@given(data=st.binary(max_size=3000))
def test_every_backend_matches_hashlib_on_arbitrary_bytes(data: bytes) -> None:
    expected = hashlib.sha256(data).hexdigest()
    for backend in BACKENDS:
        assert verify.sha256_bytes(data, backend) == expected, backend


# -- Digest -------------------------------------------------------------------------------

HEX64 = "0123456789abcdef" * 4
HEX32 = "fedcba9876543210" * 2


def test_algorithms_are_sha256_xxh128_blake3() -> None:
    assert verify.ALGORITHMS == ("sha256", "xxh128", "blake3")


VALID_DIGEST_TEXTS = {
    "sha256": (f"sha256:{HEX64}", Digest("sha256", HEX64)),
    "xxh128": (f"xxh128:{HEX32}", Digest("xxh128", HEX32)),
    "blake3": (f"blake3:{HEX64}", Digest("blake3", HEX64)),
    "bare hex is sha256": (HEX64, Digest("sha256", HEX64)),
    "upper-case hex": (f"sha256:{HEX64.upper()}", Digest("sha256", HEX64)),
    "upper-case bare hex": (HEX64.upper(), Digest("sha256", HEX64)),
    "upper-case xxh128 hex": (f"xxh128:{HEX32.upper()}", Digest("xxh128", HEX32)),
}


@pytest.mark.parametrize(
    ("text", "digest"), VALID_DIGEST_TEXTS.values(), ids=VALID_DIGEST_TEXTS.keys()
)
def test_digest_parse_accepts_and_normalises(text: str, digest: Digest) -> None:
    parsed = Digest.parse(text)
    assert parsed == digest
    assert parsed.hex == parsed.hex.lower()
    assert str(parsed) == f"{digest.algorithm}:{digest.hex}"


BAD_DIGEST_TEXTS = {
    "empty": "",
    "algorithm only": "sha256:",
    "unknown algorithm": f"md5:{HEX32}",
    "sha256 one digit short": f"sha256:{HEX64[:-1]}",
    "sha256 one digit long": f"sha256:{HEX64}0",
    "sha256 with xxh128 length": f"sha256:{HEX32}",
    "xxh128 with sha256 length": f"xxh128:{HEX64}",
    "blake3 with xxh128 length": f"blake3:{HEX32}",
    "non-hex digit": f"sha256:{HEX64[:-1]}g",
    "bare 32 hex": HEX32,
    "bare 63 hex": HEX64[:-1],
    "bare non-hex": "z" * 64,
    "double colon": f"sha256::{HEX64}",
    "no algorithm before colon": f":{HEX64}",
}


@pytest.mark.parametrize("text", BAD_DIGEST_TEXTS.values(), ids=BAD_DIGEST_TEXTS.keys())
def test_digest_parse_rejects_malformed_text_and_quotes_it(text: str) -> None:
    with pytest.raises(DigestFormatError) as excinfo:
        Digest.parse(text)
    message = str(excinfo.value)
    if text:
        assert text in message
    else:
        assert "''" in message or '""' in message


PASTED_DIGESTS = {
    "leading space": f" sha256:{HEX64}",
    "trailing newline": f"sha256:{HEX64}\n",
    "bare hex with trailing space": f"{HEX64} ",
    "upper-case algorithm": f"SHA256:{HEX64.upper()}",
}


@pytest.mark.parametrize("text", PASTED_DIGESTS.values(), ids=PASTED_DIGESTS.keys())
def test_digest_parse_forgives_how_digests_get_pasted(text: str) -> None:
    # Digests are copied from web pages and terminals: surrounding whitespace and letter
    # case are forgiven, and the result is the normalised form.
    assert Digest.parse(text) == Digest("sha256", HEX64.lower())


def test_error_classes_derive_from_the_matching_builtins() -> None:
    assert issubclass(VerifyError, IrisModelsError)
    for error, builtin in [
        (DigestFormatError, ValueError),
        (ManifestError, ValueError),
        (FileChangedError, RuntimeError),
    ]:
        assert issubclass(error, VerifyError)
        assert issubclass(error, builtin)


def test_digest_is_frozen() -> None:
    digest = Digest.parse(HEX64)
    with pytest.raises(dataclasses.FrozenInstanceError):
        digest.hex = HEX64  # type: ignore[misc]


@settings(max_examples=200, deadline=None)
@given(
    algorithm_and_size=st.sampled_from([("sha256", 32), ("xxh128", 16), ("blake3", 32)]),
    raw=st.binary(min_size=32, max_size=32),
    upper=st.booleans(),
)
def test_digest_text_round_trips(
    algorithm_and_size: tuple[str, int], raw: bytes, upper: bool
) -> None:
    algorithm, size = algorithm_and_size
    hex_text = raw[:size].hex()
    text = f"{algorithm}:{hex_text.upper() if upper else hex_text}"
    digest = Digest.parse(text)
    assert digest == Digest(algorithm, hex_text)
    assert Digest.parse(str(digest)) == digest


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=80) | st.from_regex(r"\A[a-z0-9]{0,8}:[0-9a-fA-F]{0,70}\Z"))
def test_digest_parse_either_returns_a_digest_or_raises_digest_format_error(text: str) -> None:
    try:
        digest = Digest.parse(text)
    except DigestFormatError:
        return
    assert digest.algorithm in verify.ALGORITHMS
    assert str(digest) == (text if ":" in text else f"sha256:{text}").lower()


# -- file_digest ----------------------------------------------------------------------------

FILE_SIZES = {
    "empty": 0,
    "1 byte": 1,
    "55 bytes": 55,
    "56 bytes": 56,
    "63 bytes": 63,
    "64 bytes": 64,
    "65 bytes": 65,
    "3 MiB + 5": 3 * MiB + 5,
    "read chunk - 1": READ_CHUNK - 1,
    "read chunk": READ_CHUNK,
    "read chunk + 1": READ_CHUNK + 1,
    "2 read chunks + 63": 2 * READ_CHUNK + 63,
}


@pytest.mark.parametrize("size", FILE_SIZES.values(), ids=FILE_SIZES.keys())
def test_file_digest_matches_hashlib(tmp_path: Path, size: int) -> None:
    data = random_bytes(size, seed=size)
    path = write(tmp_path / "file.bin", data)
    assert verify.file_digest(path) == Digest("sha256", hashlib.sha256(data).hexdigest())


def test_file_digest_accepts_str_and_path(tmp_path: Path) -> None:
    path = write(tmp_path / "file.bin", b"abc")
    expected = Digest.parse(NIST_VECTORS["abc"][1])
    assert verify.file_digest(path) == expected
    assert verify.file_digest(str(path)) == expected


@pytest.mark.parametrize("algorithm", verify.ALGORITHMS)
@pytest.mark.parametrize("size", [0, 1, 65, READ_CHUNK + 1], ids=["0", "1", "65", "chunk+1"])
def test_file_digest_of_each_algorithm_matches_its_reference(
    tmp_path: Path, algorithm: str, size: int
) -> None:
    data = random_bytes(size, seed=11)
    path = write(tmp_path / "file.bin", data)
    assert verify.file_digest(path, algorithm) == Digest(algorithm, hashlib_of(algorithm, data))


def test_file_digest_rejects_unknown_algorithm(tmp_path: Path) -> None:
    path = write(tmp_path / "file.bin", b"abc")
    with pytest.raises(ValueError, match="md5"):
        verify.file_digest(path, "md5")


@pytest.fixture
def sparse_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder for large sparse files: tmpfs (/dev/shm) where there is one, else tmp_path.

    Reading a hole on tmpfs maps the shared zero page, while ext4 and friends first fill the
    page cache with zeros, which made the first read of a sparse file several times slower
    (about 0.3 GB/s instead of 1.5) on the 2-core CI runner.
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="iris-models-test-") as folder:
        yield Path(folder)


# sha256 of 3 GiB of zero bytes, computed once with hashlib in 64 MiB chunks. Hashing it here
# too would double the test's time (hashlib runs at about 1.5 GB/s on a 2-core CI runner).
ZEROS_3GIB_SHA256 = "305b66a59d15b252092fbda9d09711230c429f351897cbd430e7b55a35fd3b97"


def test_file_digest_of_3_gib_sparse_file_crosses_32_bit_sizes(sparse_dir: Path) -> None:
    # A sparse file costs no disk or RAM; 3 GiB is past both 2**31 bytes and 2**32 bits.
    # About 3 s: the slowest test here, kept because 32-bit size bugs hide below 2 GiB.
    path = sparse_dir / "sparse.bin"
    path.touch()
    os.truncate(path, 3 * GiB)
    assert verify.file_digest(path) == Digest("sha256", ZEROS_3GIB_SHA256)


# -- progress -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def twelve_mib_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    data = random_bytes(12 * MiB + 7, seed=12)
    return write(tmp_path_factory.mktemp("progress") / "twelve.bin", data), data


def test_file_digest_progress_rises_to_the_total_on_the_calling_thread(
    twelve_mib_file: tuple[Path, bytes],
) -> None:
    path, data = twelve_mib_file
    calls: list[tuple[int, int]] = []
    threads: set[int] = set()

    def on_progress(done: int, total: int) -> None:
        calls.append((done, total))
        threads.add(threading.get_ident())

    digest = verify.file_digest(path, on_progress=on_progress)
    assert digest.hex == hashlib.sha256(data).hexdigest()
    assert_progress_well_formed(calls, total=len(data))
    assert threads == {threading.get_ident()}


def test_file_digest_progress_of_an_empty_file_reports_zero_of_zero(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.bin", b"")
    calls: list[tuple[int, int]] = []
    verify.file_digest(path, on_progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (0, 0)


@pytest.mark.parametrize("algorithm", ["xxh128", "blake3"])
def test_progress_of_other_algorithms_rises_to_the_total(
    twelve_mib_file: tuple[Path, bytes], algorithm: str
) -> None:
    path, data = twelve_mib_file
    calls: list[tuple[int, int]] = []
    verify.file_digest(path, algorithm, on_progress=lambda d, t: calls.append((d, t)))
    assert_progress_well_formed(calls, total=len(data))


def test_manifest_and_piece_verify_progress_rise_to_the_total(
    twelve_mib_file: tuple[Path, bytes],
) -> None:
    path, data = twelve_mib_file
    calls: list[tuple[int, int]] = []
    built = verify.manifest(path, piece_size=MiB, on_progress=lambda d, t: calls.append((d, t)))
    assert_progress_well_formed(calls, total=len(data))
    calls.clear()
    result = verify.verify(path, manifest=built, on_progress=lambda d, t: calls.append((d, t)))
    assert result.ok
    assert_progress_well_formed(calls, total=len(data))


def test_exception_in_on_progress_propagates(twelve_mib_file: tuple[Path, bytes]) -> None:
    path, _ = twelve_mib_file

    class StopHashing(Exception):
        pass

    def on_progress(done: int, total: int) -> None:
        raise StopHashing

    with pytest.raises(StopHashing):
        verify.file_digest(path, on_progress=on_progress)


# -- manifests ------------------------------------------------------------------------------

PIECE = 64 * KiB

MANIFEST_SIZES = {
    "empty": 0,
    "1 byte": 1,
    "less than a piece": 1000,
    "exactly one piece": PIECE,
    "one piece + 1": PIECE + 1,
    "16 pieces": 16 * PIECE,
    "16 pieces - 1": 16 * PIECE - 1,
    "16 pieces + 1000": 16 * PIECE + 1000,
}


@pytest.mark.parametrize("size", MANIFEST_SIZES.values(), ids=MANIFEST_SIZES.keys())
def test_manifest_pieces_match_hashlib_per_range(tmp_path: Path, size: int) -> None:
    data = random_bytes(size, seed=21)
    path = write(tmp_path / "file.bin", data)
    built = verify.manifest(path, piece_size=PIECE)
    assert built.size == size
    assert built.piece_size == PIECE
    assert built.sha256 == Digest("sha256", hashlib.sha256(data).hexdigest())
    assert built.sha256 == verify.file_digest(path)
    assert isinstance(built.pieces, tuple)
    assert len(built.pieces) == -(-size // PIECE)
    for index, piece in enumerate(built.pieces):
        start, end = built.piece_range(index)
        assert (start, end) == (index * PIECE, min((index + 1) * PIECE, size))
        assert piece == hashlib.sha256(data[start:end]).hexdigest(), f"piece {index}"


def test_manifest_of_empty_file_has_no_pieces(tmp_path: Path) -> None:
    built = verify.manifest(write(tmp_path / "empty.bin", b""), piece_size=PIECE)
    assert built.pieces == ()
    assert built.sha256.hex == hashlib.sha256(b"").hexdigest()


def test_manifest_with_smallest_piece_size(tmp_path: Path) -> None:
    data = random_bytes(1000, seed=22)
    built = verify.manifest(write(tmp_path / "file.bin", data), piece_size=64)
    assert len(built.pieces) == 16
    assert built.pieces[-1] == hashlib.sha256(data[960:]).hexdigest()


def test_manifest_default_piece_size_is_64_mib(tmp_path: Path) -> None:
    data = random_bytes(3 * MiB, seed=23)
    built = verify.manifest(write(tmp_path / "file.bin", data))
    assert built.piece_size == 64 * MiB
    assert built.pieces == (hashlib.sha256(data).hexdigest(),)


@pytest.mark.parametrize("piece_size", [0, -64, 1, 63, 65, 100, 1000], ids=str)
def test_manifest_rejects_piece_size_not_a_positive_multiple_of_64(
    tmp_path: Path, piece_size: int
) -> None:
    path = write(tmp_path / "file.bin", b"x" * 1000)
    with pytest.raises(ValueError, match=str(piece_size)):
        verify.manifest(path, piece_size=piece_size)


@pytest.fixture(scope="module")
def piece_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    """About 1 MiB of random bytes: 16 full 64 KiB pieces and a 1000-byte tail."""
    data = random_bytes(16 * PIECE + 1000, seed=24)
    return write(tmp_path_factory.mktemp("pieces") / "pieces.bin", data), data


def test_manifest_is_the_same_with_one_or_two_workers(piece_file: tuple[Path, bytes]) -> None:
    path, _ = piece_file
    one = verify.manifest(path, piece_size=PIECE, workers=1)
    two = verify.manifest(path, piece_size=PIECE, workers=2)
    default = verify.manifest(path, piece_size=PIECE)
    assert one == two == default


def test_manifest_is_frozen_with_string_pieces(piece_file: tuple[Path, bytes]) -> None:
    built = verify.manifest(piece_file[0], piece_size=PIECE)
    assert all(isinstance(piece, str) and len(piece) == 64 for piece in built.pieces)
    with pytest.raises(dataclasses.FrozenInstanceError):
        built.size = 0  # type: ignore[misc]


def test_manifest_dict_and_json_file_round_trip(
    piece_file: tuple[Path, bytes], tmp_path: Path
) -> None:
    built = verify.manifest(piece_file[0], piece_size=PIECE)
    as_dict = built.to_dict()
    assert json.loads(json.dumps(as_dict)) == as_dict  # plain JSON types only
    assert Manifest.from_dict(as_dict) == built
    saved = tmp_path / "pieces.manifest.json"
    built.save(saved)
    assert json.loads(saved.read_text()) == as_dict
    assert Manifest.load(saved) == built
    assert Manifest.load(str(saved)) == built


def test_verify_with_matching_manifest_is_ok(piece_file: tuple[Path, bytes]) -> None:
    path, data = piece_file
    built = verify.manifest(path, piece_size=PIECE)
    result = verify.verify(path, manifest=built)
    assert result.ok
    assert result.bad_ranges == ()
    assert result.error is None
    assert result.size == len(data)
    expected_too = verify.verify(path, f"sha256:{hashlib.sha256(data).hexdigest()}", manifest=built)
    assert expected_too.ok


def test_verify_empty_file_with_empty_manifest_is_ok(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.bin", b"")
    result = verify.verify(path, manifest=verify.manifest(path, piece_size=PIECE))
    assert result.ok
    assert result.bad_ranges == ()


FLIP_OFFSETS = {
    "first byte": 0,
    "end of first piece": PIECE - 1,
    "start of second piece": PIECE,
    "middle": 7 * PIECE + 12345,
    "last full piece's last byte": 16 * PIECE - 1,
    "first byte of the tail": 16 * PIECE,
    "last byte of the file": 16 * PIECE + 999,
}


@pytest.mark.parametrize("workers", [1, 2, None], ids=["1 worker", "2 workers", "default"])
@pytest.mark.parametrize("offset", FLIP_OFFSETS.values(), ids=FLIP_OFFSETS.keys())
def test_flipped_byte_is_found_in_exactly_its_piece(
    piece_file: tuple[Path, bytes], tmp_path: Path, offset: int, workers: int | None
) -> None:
    original, data = piece_file
    built = verify.manifest(original, piece_size=PIECE)
    path = write(tmp_path / "damaged.bin", data)
    flip_byte(path, offset)
    result = verify.verify(path, manifest=built, workers=workers)
    assert not result.ok
    assert result.bad_ranges == (expected_range(offset, len(data), PIECE),)
    assert result.error is None


def test_several_damaged_pieces_are_listed_in_file_order(
    piece_file: tuple[Path, bytes], tmp_path: Path
) -> None:
    original, data = piece_file
    built = verify.manifest(original, piece_size=PIECE)
    path = write(tmp_path / "damaged.bin", data)
    offsets = [16 * PIECE + 5, 3 * PIECE + 1, 3 * PIECE + 2, 9 * PIECE]
    for offset in offsets:
        flip_byte(path, offset)
    result = verify.verify(path, manifest=built, workers=2)
    assert not result.ok
    assert result.bad_ranges == (
        (3 * PIECE, 4 * PIECE),
        (9 * PIECE, 10 * PIECE),
        (16 * PIECE, len(data)),
    )


def test_every_piece_damaged_lists_every_range(
    piece_file: tuple[Path, bytes], tmp_path: Path
) -> None:
    original, data = piece_file
    built = verify.manifest(original, piece_size=PIECE)
    path = write(tmp_path / "other.bin", random_bytes(len(data), seed=99))
    result = verify.verify(path, manifest=built)
    assert result.bad_ranges == tuple(built.piece_range(i) for i in range(len(built.pieces)))


@pytest.mark.parametrize(
    "delta", [-1, 1, -1000, PIECE], ids=["1 short", "1 long", "tail short", "piece long"]
)
def test_manifest_against_file_of_another_size_raises_manifest_error(
    piece_file: tuple[Path, bytes], tmp_path: Path, delta: int
) -> None:
    original, data = piece_file
    built = verify.manifest(original, piece_size=PIECE)
    resized = data[:delta] if delta < 0 else data + bytes(delta)
    path = write(tmp_path / "resized.bin", resized)
    with pytest.raises(ManifestError):
        verify.verify(path, manifest=built)


def test_manifest_from_a_different_file_raises_manifest_error(
    piece_file: tuple[Path, bytes],
) -> None:
    path, data = piece_file
    built = verify.manifest(path, piece_size=PIECE)
    other = hashlib.sha256(data + b"!").hexdigest()
    with pytest.raises(ManifestError, match="different file"):
        verify.verify(path, f"sha256:{other}", manifest=built)
    with pytest.raises(ManifestError, match="different file"):
        verify.verify(path, Digest("sha256", other), manifest=built)


def _replace(key: str, value: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda manifest_dict: {**manifest_dict, key: value}


def _drop(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda manifest_dict: {k: v for k, v in manifest_dict.items() if k != key}


MALFORMED_MANIFESTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "a list, not an object": lambda d: [d],
    "null": lambda d: None,
    "no size": _drop("size"),
    "no piece_size": _drop("piece_size"),
    "no sha256": _drop("sha256"),
    "no pieces": _drop("pieces"),
    "negative size": _replace("size", -1),
    "size as text": _replace("size", "1049576"),
    "piece_size zero": _replace("piece_size", 0),
    "piece_size not a multiple of 64": _replace("piece_size", 1000),
    "one piece too many": lambda d: {**d, "pieces": [*d["pieces"], d["pieces"][0]]},
    "one piece too few": lambda d: {**d, "pieces": d["pieces"][:-1]},
    "size needs more pieces": lambda d: {**d, "size": d["size"] + PIECE},
    "piece hex too short": lambda d: {**d, "pieces": [d["pieces"][0][:-1], *d["pieces"][1:]]},
    "piece not hex": lambda d: {**d, "pieces": ["g" * 64, *d["pieces"][1:]]},
    "pieces as one string": lambda d: {**d, "pieces": "".join(d["pieces"])},
    "sha256 malformed": _replace("sha256", "sha256:xyz"),
    "sha256 of another algorithm": _replace("sha256", f"xxh128:{HEX32}"),
    "sha256 as a number": _replace("sha256", 1234),
    "pieces null": _replace("pieces", None),
}


@pytest.mark.parametrize("mutate", MALFORMED_MANIFESTS.values(), ids=MALFORMED_MANIFESTS.keys())
def test_malformed_manifest_dict_raises_manifest_error(
    piece_file: tuple[Path, bytes], tmp_path: Path, mutate: Callable[[dict[str, Any]], Any]
) -> None:
    valid = verify.manifest(piece_file[0], piece_size=PIECE).to_dict()
    malformed = mutate(dict(valid))
    with pytest.raises(ManifestError):
        Manifest.from_dict(malformed)
    saved = tmp_path / "malformed.json"
    saved.write_text(json.dumps(malformed))
    with pytest.raises(ManifestError):
        Manifest.load(saved)


def test_hand_built_manifest_that_cannot_be_right_is_rejected_when_built(
    piece_file: tuple[Path, bytes],
) -> None:
    path, _ = piece_file
    built = verify.manifest(path, piece_size=PIECE)
    with pytest.raises(ManifestError, match="do not fit"):
        dataclasses.replace(built, pieces=built.pieces[:-1])
    with pytest.raises(ManifestError, match="hex"):
        dataclasses.replace(built, pieces=("z" * 64, *built.pieces[1:]))
    with pytest.raises(ManifestError, match="multiple of 64"):
        dataclasses.replace(built, piece_size=PIECE + 1)


@pytest.mark.parametrize(
    "text", ["", "{", "not json", "[1, 2"], ids=["empty", "brace", "word", "list"]
)
def test_manifest_file_that_is_not_json_raises_manifest_error(tmp_path: Path, text: str) -> None:
    saved = tmp_path / "broken.json"
    saved.write_text(text)
    with pytest.raises(ManifestError):
        Manifest.load(saved)


@settings(max_examples=200, deadline=None)
@given(size=st.integers(0, 10**12), piece_blocks=st.integers(1, 2**20))
def test_piece_ranges_tile_the_file(size: int, piece_blocks: int) -> None:
    piece_size = 64 * piece_blocks
    count = -(-size // piece_size)
    if count > 5000:
        size, count = piece_size * 5000 - 1, 5000
    built = Manifest(
        size=size, piece_size=piece_size, sha256=Digest("sha256", HEX64), pieces=(HEX64,) * count
    )
    end = 0
    for index in range(count):
        start, end_of_piece = built.piece_range(index)
        assert start == end
        assert 0 < end_of_piece - start <= piece_size
        end = end_of_piece
    assert end == size


# -- verify() -------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", verify.ALGORITHMS)
@pytest.mark.parametrize("as_text", [True, False], ids=["text", "Digest"])
def test_verify_accepts_a_matching_digest(tmp_path: Path, algorithm: str, as_text: bool) -> None:
    data = random_bytes(100_000, seed=31)
    path = write(tmp_path / "file.bin", data)
    digest = Digest(algorithm, hashlib_of(algorithm, data))
    result = verify.verify(path, str(digest) if as_text else digest)
    assert result == VerifyResult(
        path=path,
        ok=True,
        expected=digest,
        actual=digest,
        size=len(data),
        bad_ranges=(),
        error=None,
    )
    assert isinstance(result.path, Path)


@pytest.mark.parametrize("algorithm", verify.ALGORITHMS)
def test_verify_reports_a_mismatch_with_the_actual_digest(tmp_path: Path, algorithm: str) -> None:
    data = random_bytes(100_000, seed=32)
    path = write(tmp_path / "file.bin", data)
    wrong = Digest(algorithm, hashlib_of(algorithm, data + b"x"))
    result = verify.verify(path, wrong)
    assert not result.ok
    assert result.expected == wrong
    assert result.actual == Digest(algorithm, hashlib_of(algorithm, data))
    assert result.size == len(data)
    assert result.error is None
    assert result.bad_ranges == ()


def test_verify_reads_bare_hex_as_sha256(tmp_path: Path) -> None:
    data = b"bare hex"
    path = write(tmp_path / "file.bin", data)
    hex_digest = hashlib.sha256(data).hexdigest()
    result = verify.verify(path, hex_digest.upper())
    assert result.ok
    assert result.expected == Digest("sha256", hex_digest)


def test_verify_with_malformed_digest_raises_digest_format_error(tmp_path: Path) -> None:
    path = write(tmp_path / "file.bin", b"x")
    with pytest.raises(DigestFormatError, match="sha256:nothex"):
        verify.verify(path, "sha256:nothex")


def test_verify_without_expected_or_manifest_is_a_value_error(tmp_path: Path) -> None:
    path = write(tmp_path / "file.bin", b"x")
    with pytest.raises(ValueError):  # noqa: PT011 - the spec names only the built-in
        verify.verify(path)


def test_verify_result_is_frozen(tmp_path: Path) -> None:
    path = write(tmp_path / "file.bin", b"x")
    result = verify.verify(path, hashlib.sha256(b"x").hexdigest())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.ok = False  # type: ignore[misc]


def test_verify_progress_rises_to_the_total(twelve_mib_file: tuple[Path, bytes]) -> None:
    path, data = twelve_mib_file
    calls: list[tuple[int, int]] = []
    result = verify.verify(
        path, hashlib.sha256(data).hexdigest(), on_progress=lambda d, t: calls.append((d, t))
    )
    assert result.ok
    assert_progress_well_formed(calls, total=len(data))


# -- verify_many() --------------------------------------------------------------------------


@pytest.fixture
def mixed_items(tmp_path: Path) -> list[tuple[Path, str]]:
    good = [random_bytes(size, seed=size) for size in (0, 1, 5000, READ_CHUNK + 3)]
    items: list[tuple[Path, str]] = []
    for index, data in enumerate(good):
        path = write(tmp_path / f"good{index}.bin", data)
        items.append((path, f"sha256:{hashlib.sha256(data).hexdigest()}"))
    wrong = write(tmp_path / "wrong.bin", b"wrong contents")
    directory = tmp_path / "a-directory"
    directory.mkdir()
    items.insert(1, (tmp_path / "missing.bin", HEX64))
    items.insert(3, (directory, HEX64))
    items.insert(5, (wrong, hashlib.sha256(b"right contents").hexdigest()))
    return items


@pytest.mark.parametrize("workers", [1, 2, None], ids=["1 worker", "2 workers", "default"])
def test_verify_many_reports_every_file_in_order_and_never_raises(
    mixed_items: list[tuple[Path, str]], workers: int | None
) -> None:
    results = verify.verify_many(mixed_items, workers=workers)
    assert [result.path for result in results] == [Path(path) for path, _ in mixed_items]
    by_name = {result.path.name: result for result in results}
    for name in ("missing.bin", "a-directory"):
        assert not by_name[name].ok
        assert by_name[name].error, name
        assert by_name[name].actual is None
    wrong = by_name["wrong.bin"]
    assert not wrong.ok
    assert wrong.error is None
    assert wrong.actual == Digest("sha256", hashlib.sha256(b"wrong contents").hexdigest())
    for result, (path, expected) in zip(results, mixed_items, strict=True):
        assert result.expected == Digest.parse(expected)
        if path.name.startswith("good"):
            assert result.ok, result
            assert result.error is None
            assert result.actual == result.expected
            assert result.size == path.stat().st_size


def test_verify_many_missing_file_error_names_the_problem(
    mixed_items: list[tuple[Path, str]],
) -> None:
    results = verify.verify_many(mixed_items)
    missing = next(result for result in results if result.path.name == "missing.bin")
    assert missing.error is not None
    assert "missing.bin" in missing.error or "No such file" in missing.error


def test_verify_many_of_nothing_is_empty() -> None:
    assert verify.verify_many([]) == []
    assert verify.verify_many(iter(())) == []


def test_verify_many_accepts_a_generator_and_repeated_paths(tmp_path: Path) -> None:
    data = random_bytes(10_000, seed=41)
    path = write(tmp_path / "file.bin", data)
    right, wrong = hashlib.sha256(data).hexdigest(), HEX64
    results = verify.verify_many((path, digest) for digest in [right, wrong, right])
    assert [result.ok for result in results] == [True, False, True]


def test_verify_many_keeps_order_with_more_files_than_workers(tmp_path: Path) -> None:
    # Larger files first, so that with a pool they finish out of order.
    sizes = [3 * MiB, 2 * MiB, MiB, 64 * KiB, 100, 0, 1, 2 * MiB + 1, 7, 640 * KiB]
    items = []
    for index, size in enumerate(sizes):
        data = random_bytes(size, seed=index)
        items.append((write(tmp_path / f"f{index}.bin", data), hashlib.sha256(data).hexdigest()))
    results = verify.verify_many(items, workers=2)
    assert [result.path for result in results] == [path for path, _ in items]
    assert [result.size for result in results] == sizes
    assert all(result.ok for result in results)


@pytest.mark.parametrize("algorithm", ["xxh128", "blake3"])
def test_verify_many_checks_other_algorithms(tmp_path: Path, algorithm: str) -> None:
    data = random_bytes(50_000, seed=42)
    path = write(tmp_path / "file.bin", data)
    digest = Digest(algorithm, hashlib_of(algorithm, data))
    other = write(tmp_path / "sha.bin", b"abc")
    results = verify.verify_many([(path, digest), (other, NIST_VECTORS["abc"][1])])
    assert [result.ok for result in results] == [True, True]
    assert results[0].actual == digest


def test_verify_many_progress_rises_to_the_total(mixed_items: list[tuple[Path, str]]) -> None:
    calls: list[tuple[int, int]] = []
    threads: set[int] = set()

    def on_progress(done: int, total: int) -> None:
        calls.append((done, total))
        threads.add(threading.get_ident())

    verify.verify_many(mixed_items, on_progress=on_progress)
    assert_progress_well_formed(calls)
    readable = sum(path.stat().st_size for path, _ in mixed_items if path.is_file())
    assert calls[-1][0] >= readable
    assert threads == {threading.get_ident()}


@pytest.mark.parametrize("algorithm", ["xxh128", "blake3"])
@pytest.mark.parametrize("with_sha256", [False, True], ids=["alone", "beside sha256"])
def test_verify_many_progress_counts_files_of_every_algorithm(
    tmp_path: Path, algorithm: str, with_sha256: bool
) -> None:
    sealed = random_bytes(3 * MiB, seed=43)
    items: list[tuple[Path, str | Digest]] = [
        (write(tmp_path / "sealed.bin", sealed), Digest(algorithm, hashlib_of(algorithm, sealed)))
    ]
    if with_sha256:
        other = random_bytes(2 * MiB, seed=44)
        items.append((write(tmp_path / "sha.bin", other), hashlib.sha256(other).hexdigest()))
    calls: list[tuple[int, int]] = []
    results = verify.verify_many(items, on_progress=lambda d, t: calls.append((d, t)))
    assert all(result.ok for result in results)
    assert_progress_well_formed(calls, total=sum(path.stat().st_size for path, _ in items))


# -- files that change while they are hashed ------------------------------------------------

# Digests of 512 MiB of zero bytes (hashlib and blake3 fed 64 MiB at a time): large
# enough that hashing outlasts the first progress report (reports come about every 0.1 s).
CHANGING_SIZE = 512 * MiB
ZEROS_512MIB_SHA256 = "9acca8e8c22201155389f65abbf6bc9723edc7384ead80503839f49dcc56d767"
ZEROS_512MIB_BLAKE3 = "34f2f34bcc048af98242e010b4a661348276a784d9f9f99fcff70bf94fe8b9ba"
ZEROS_PIECE_SIZE = 64 * MiB


def make_sparse_zeros(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.touch()
    os.truncate(path, CHANGING_SIZE)
    # An mtime an hour old, so that any write moves it, however coarse the clock.
    an_hour_ago = time.time() - 3600
    os.utime(path, (an_hour_ago, an_hour_ago))


def append_a_byte(path: Path) -> None:
    with open(path, "ab") as file:
        file.write(b"\x01")


def truncate_to_a_quarter(path: Path) -> None:
    os.truncate(path, CHANGING_SIZE // 4)


def overwrite_first_byte(path: Path) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, b"\x01", 0)
    finally:
        os.close(fd)


MUTATIONS = {
    "append": append_a_byte,
    "truncate": truncate_to_a_quarter,
    "overwrite in place": overwrite_first_byte,
}

ProgressCallback = Callable[[int, int], None]


def outcome_of_file_digest(path: Path, on_progress: ProgressCallback) -> str:
    try:
        digest = verify.file_digest(path, on_progress=on_progress)
    except FileChangedError:
        return "changed"
    return "original" if digest == Digest("sha256", ZEROS_512MIB_SHA256) else f"returned {digest}"


def outcome_of_blake3_digest(path: Path, on_progress: ProgressCallback) -> str:
    try:
        digest = verify.file_digest(path, "blake3", on_progress=on_progress)
    except FileChangedError:
        return "changed"
    return "original" if digest == Digest("blake3", ZEROS_512MIB_BLAKE3) else f"returned {digest}"


def outcome_of_verify(path: Path, on_progress: ProgressCallback) -> str:
    try:
        result = verify.verify(path, ZEROS_512MIB_SHA256, on_progress=on_progress)
    except FileChangedError:
        return "changed"
    return "original" if result.ok else f"returned {result}"


def outcome_of_verify_with_manifest(path: Path, on_progress: ProgressCallback) -> str:
    piece = hashlib.sha256(bytes(ZEROS_PIECE_SIZE)).hexdigest()
    zeros = Manifest(
        size=CHANGING_SIZE,
        piece_size=ZEROS_PIECE_SIZE,
        sha256=Digest("sha256", ZEROS_512MIB_SHA256),
        pieces=(piece,) * (CHANGING_SIZE // ZEROS_PIECE_SIZE),
    )
    try:
        result = verify.verify(path, manifest=zeros, workers=2, on_progress=on_progress)
    except FileChangedError:
        return "changed"
    return "original" if result.ok else f"returned {result}"


def outcome_of_verify_many(path: Path, on_progress: ProgressCallback) -> str:
    [result] = verify.verify_many([(path, ZEROS_512MIB_SHA256)], on_progress=on_progress)
    if result.error is not None and "chang" in result.error.lower():
        return "changed"
    return "original" if result.ok else f"returned {result}"


def changer_at_first_report(
    path: Path, mutate: Callable[[Path], None]
) -> tuple[ProgressCallback, list[int]]:
    """A progress callback that mutates ``path`` once, at the first report with bytes left,
    and the list where it records the bytes_done it did that at."""
    changed_at: list[int] = []

    def on_progress(done: int, total: int) -> None:
        if not changed_at and done < total:
            mutate(path)
            changed_at.append(done)

    return on_progress, changed_at


CHANGE_CASES = {
    "file_digest, append": (outcome_of_file_digest, append_a_byte),
    "file_digest, truncate": (outcome_of_file_digest, truncate_to_a_quarter),
    "file_digest, overwrite in place": (outcome_of_file_digest, overwrite_first_byte),
    "verify, append": (outcome_of_verify, append_a_byte),
    "verify, overwrite in place": (outcome_of_verify, overwrite_first_byte),
    "verify with manifest, append": (outcome_of_verify_with_manifest, append_a_byte),
    "verify with manifest, truncate": (outcome_of_verify_with_manifest, truncate_to_a_quarter),
    "verify_many, append": (outcome_of_verify_many, append_a_byte),
    # The seals share one reader; XXH3 outruns the first progress report, BLAKE3 does not.
    "file_digest blake3, truncate": (outcome_of_blake3_digest, truncate_to_a_quarter),
    "file_digest blake3, append": (outcome_of_blake3_digest, append_a_byte),
    "file_digest blake3, overwrite in place": (outcome_of_blake3_digest, overwrite_first_byte),
}


@pytest.mark.parametrize(("outcome_of", "mutate"), CHANGE_CASES.values(), ids=CHANGE_CASES.keys())
def test_file_changed_while_hashed_is_reported(
    sparse_dir: Path,
    outcome_of: Callable[[Path, ProgressCallback], str],
    mutate: Callable[[Path], None],
) -> None:
    """The file is changed from inside the first progress report that arrives while bytes are
    still left to hash (on_progress runs on this thread while the core hashes without the GIL).

    A run counts only if that happened; one that returns the untouched file's digest may have
    finished reading before the change landed, so it is tried again, a few times at most.
    """
    path = sparse_dir / "changing.bin"
    outcomes = []
    for _ in range(4):
        make_sparse_zeros(path)
        on_progress, changed_at = changer_at_first_report(path, mutate)
        outcome = outcome_of(path, on_progress)
        outcomes.append((outcome, changed_at))
        if changed_at and outcome == "changed":
            return
        assert outcome in ("changed", "original"), f"after a change at {changed_at}: {outcome}"
        assert outcome == "original" or changed_at, "reported a change when nothing changed"
    if not any(changed_at for _, changed_at in outcomes):
        # on_progress is promised only once at the end; a fast machine may give no other.
        pytest.skip("hashing finished before any progress report on every attempt")
    pytest.fail(f"no attempt reported the change; (outcome, changed at bytes_done): {outcomes}")


@pytest.mark.parametrize("algorithm", verify.ALGORITHMS)
def test_exception_in_on_progress_stops_the_hashing_thread(
    sparse_dir: Path, algorithm: str
) -> None:
    path = sparse_dir / "large.bin"
    make_sparse_zeros(path)
    threads_before = set(threading.enumerate())

    class StopHashing(Exception):
        pass

    def on_progress(done: int, total: int) -> None:
        raise StopHashing

    with pytest.raises(StopHashing):
        verify.file_digest(path, algorithm, on_progress=on_progress)
    assert set(threading.enumerate()) <= threads_before


def test_unchanged_sparse_file_is_not_reported_as_changed(sparse_dir: Path) -> None:
    # The control for the test above: the same file, left alone, hashes to its digest.
    path = sparse_dir / "still.bin"
    make_sparse_zeros(path)
    assert outcome_of_file_digest(path, lambda done, total: None) == "original"


# -- paths that are not readable regular files ----------------------------------------------

ENTRY_POINTS: dict[str, Callable[[Path], object]] = {
    "file_digest": verify.file_digest,
    "file_digest xxh128": lambda path: verify.file_digest(path, "xxh128"),
    "manifest": lambda path: verify.manifest(path, piece_size=PIECE),
    "verify": lambda path: verify.verify(path, HEX64),
    "verify blake3": lambda path: verify.verify(path, f"blake3:{HEX64}"),
}


@pytest.mark.parametrize("call", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_missing_file_raises_file_not_found_with_its_path(
    tmp_path: Path, call: Callable[[Path], object]
) -> None:
    path = tmp_path / "missing.bin"
    with pytest.raises(FileNotFoundError) as excinfo:
        call(path)
    assert str(excinfo.value.filename) == str(path)


@pytest.mark.parametrize("call", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_directory_raises_is_a_directory(tmp_path: Path, call: Callable[[Path], object]) -> None:
    with pytest.raises(IsADirectoryError):
        call(tmp_path)


def test_missing_file_with_manifest_raises_file_not_found(
    piece_file: tuple[Path, bytes], tmp_path: Path
) -> None:
    built = verify.manifest(piece_file[0], piece_size=PIECE)
    with pytest.raises(FileNotFoundError):
        verify.verify(tmp_path / "missing.bin", manifest=built)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
@pytest.mark.parametrize("call", ENTRY_POINTS.values(), ids=ENTRY_POINTS.keys())
def test_unreadable_file_raises_permission_error(
    tmp_path: Path, call: Callable[[Path], object]
) -> None:
    path = write(tmp_path / "secret.bin", b"secret")
    path.chmod(0)
    try:
        with pytest.raises(PermissionError):
            call(path)
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


# Each probe runs in its own interpreter, so that one that blocks (opening a FIFO with no
# writer, reading /dev/zero for ever) is killed instead of hanging the suite. They all run at
# once, so that even when every probe blocks the suite waits for one hang guard, not twelve.
SPECIAL_FILE_PROBES = {
    "file_digest": "verify.file_digest(path)",
    "file_digest xxh128": "verify.file_digest(path, 'xxh128')",
    "file_digest blake3": "verify.file_digest(path, 'blake3')",
    "manifest": "verify.manifest(path, piece_size=65536)",
    "verify_many": "verify.verify_many([(path, '0' * 64)])[0]",
    "verify_many xxh128": "verify.verify_many([(path, 'xxh128:' + '0' * 32)])[0]",
}

PROBE_TEMPLATE = """
import sys
from iris_models import verify
path = sys.argv[1]
try:
    value = {call}
except Exception as error:
    print("raised", type(error).__name__, error)
else:
    print("returned", value.ok if hasattr(value, "ok") else value, getattr(value, "error", ""))
"""

HANG_GUARD_S = 20  # not a measurement: every probe together takes a second or two


@pytest.fixture(scope="module")
def special_file_outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, str], str]:
    """What each probe printed, by (kind of file, probe id); "blocked" for one that hung."""
    special_files = {"zero device": "/dev/zero"}
    if hasattr(os, "mkfifo"):
        fifo = tmp_path_factory.mktemp("fifo") / "pipe"
        os.mkfifo(fifo)
        special_files["fifo"] = str(fifo)
    running = {
        (kind, probe): subprocess.Popen(
            [sys.executable, "-c", PROBE_TEMPLATE.format(call=call), path],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for kind, path in special_files.items()
        if Path(path).exists()
        for probe, call in SPECIAL_FILE_PROBES.items()
    }
    deadline = time.monotonic() + HANG_GUARD_S
    outcomes = {}
    for key, process in running.items():
        try:
            stdout, stderr = process.communicate(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            outcomes[key] = "blocked"
        else:
            outcomes[key] = stdout.strip() if process.returncode == 0 else f"crashed: {stderr}"
    return outcomes


@pytest.mark.parametrize("kind", ["fifo", "zero device"])
@pytest.mark.parametrize("probe", SPECIAL_FILE_PROBES.keys())
def test_fifo_or_device_is_rejected_without_blocking(
    special_file_outcomes: dict[tuple[str, str], str], kind: str, probe: str
) -> None:
    if (kind, probe) not in special_file_outcomes:
        pytest.skip(f"no {kind} on this platform")
    outcome = special_file_outcomes[kind, probe]
    # file_digest and manifest raise; verify_many reports ok False with an error.
    assert outcome.startswith(("raised", "returned False")), outcome
    assert outcome != "returned False None", outcome


def test_a_seal_digest_cannot_be_checked_against_a_manifest(piece_file: tuple[Path, bytes]) -> None:
    path, _data = piece_file
    built = verify.manifest(path, piece_size=PIECE)
    seal = verify.file_digest(path, "xxh128")
    with pytest.raises(ValueError, match="checks SHA-256"):
        verify.verify(path, seal, manifest=built)


@pytest.mark.parametrize("workers", [0, -1, True, 1.5], ids=["zero", "negative", "bool", "float"])
def test_bad_worker_counts_are_value_errors(piece_file: tuple[Path, bytes], workers: Any) -> None:
    path, _ = piece_file
    with pytest.raises(ValueError, match="workers"):
        verify.manifest(path, piece_size=PIECE, workers=workers)
