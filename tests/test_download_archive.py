"""extract() against archives built here with zipfile and tarfile: every regular file lands
inside the destination with its bytes, and every unsafe member (a path that leaves, a link, a
device, a duplicate, an encrypted member, a bomb) ends in ArchiveError with nothing outside."""

from __future__ import annotations

import io
import random
import stat
import struct
import tarfile
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iris_models.download._archive import (
    ARCHIVE_SUFFIXES,
    ArchiveError,
    ArchiveLimits,
    Extracted,
    extract,
    is_archive,
)
from iris_models.errors import DownloadError

KIB = 1024
MIB = 1024 * KIB
REGULAR_FILE = (stat.S_IFREG | 0o644) << 16
"""A zip member's external_attr as Info-ZIP writes it for a regular file (type and mode)."""

TAR_MODES = {"tar": "w", "tar.gz": "w:gz", "tar.bz2": "w:bz2", "tar.xz": "w:xz"}
FORMATS = ["zip", "zip-stored", *TAR_MODES]

# A member is (name, bytes); None as the bytes makes it a directory entry.
Member = tuple[str, "bytes | None"]


def write_zip(
    path: Path,
    members: Sequence[Member],
    *,
    compression: int = zipfile.ZIP_DEFLATED,
    file_attr: int = REGULAR_FILE,
) -> Path:
    with zipfile.ZipFile(path, "w") as bundle:
        for name, data in members:
            info = zipfile.ZipInfo(name)
            info.compress_type = compression
            if data is None:
                info.external_attr = ((stat.S_IFDIR | 0o755) << 16) | 0x10
                bundle.writestr(info, b"")
            else:
                info.external_attr = file_attr
                bundle.writestr(info, data)
    return path


def write_tar(path: Path, members: Sequence[Member], mode: str = "w") -> Path:
    infos: list[tuple[tarfile.TarInfo, bytes | None]] = []
    for name, data in members:
        info = tarfile.TarInfo(name)
        if data is None:
            info.type = tarfile.DIRTYPE
            info.mode = 0o755
        else:
            info.size = len(data)
        infos.append((info, data))
    return write_tar_infos(path, infos, mode)


def write_tar_infos(
    path: Path, infos: Sequence[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w"
) -> Path:
    with tarfile.open(path, mode) as bundle:
        for info, data in infos:
            bundle.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def write_archive(fmt: str, folder: Path, members: Sequence[Member]) -> Path:
    if fmt == "zip":
        return write_zip(folder / "bundle.zip", members)
    if fmt == "zip-stored":
        return write_zip(folder / "bundle.zip", members, compression=zipfile.ZIP_STORED)
    return write_tar(folder / f"bundle.{fmt}", members, TAR_MODES[fmt])


def tar_info(name: str, kind: bytes, *, linkname: str = "", size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = size
    return info


@dataclass(frozen=True)
class Layout:
    """tmp/archives holds the archive; tmp/root holds the destination and nothing else, so a
    member that escapes one level shows up in root and one that escapes two in tmp."""

    top: Path
    archives: Path
    root: Path
    dest: Path

    def assert_nothing_outside_destination(self, archive_names: set[str]) -> None:
        assert {p.name for p in self.top.iterdir()} == {"archives", "root"}
        assert {p.name for p in self.archives.iterdir()} == archive_names
        assert [p.name for p in self.root.iterdir()] in ([], ["dest"])
        inside = self.dest.resolve()
        for path in self.dest.rglob("*") if self.dest.exists() else []:
            assert not path.is_symlink(), path
            assert path.is_file() or path.is_dir(), path
            assert path.resolve().is_relative_to(inside), path

    def files_in_destination(self) -> dict[str, bytes]:
        return {
            path.relative_to(self.dest).as_posix(): path.read_bytes()
            for path in self.dest.rglob("*")
            if path.is_file()
        }


def make_layout(top: Path) -> Layout:
    archives = top / "archives"
    root = top / "root"
    archives.mkdir()
    root.mkdir()
    return Layout(top, archives, root, root / "dest")


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    return make_layout(tmp_path)


def patch_zip(path: Path, patch: dict[str, int]) -> None:
    """Overwrites fields of the first member's local header and central directory entry
    (a one-member zip): flag_bits, crc, file_size or external_attr."""
    with zipfile.ZipFile(path) as bundle:
        local = bundle.infolist()[0].header_offset
        central = bundle.start_dir
    data = bytearray(path.read_bytes())
    assert data[local : local + 4] == b"PK\x03\x04"
    assert data[central : central + 4] == b"PK\x01\x02"
    # (format, offset in the local header or None, offset in the central directory entry)
    fields = {
        "flag_bits": ("<H", 6, 8),
        "crc": ("<I", 14, 16),
        "file_size": ("<I", 22, 24),
        "external_attr": ("<I", None, 38),
    }
    for field, value in patch.items():
        fmt, local_at, central_at = fields[field]
        if local_at is not None:
            struct.pack_into(fmt, data, local + local_at, value)
        struct.pack_into(fmt, data, central + central_at, value)
    path.write_bytes(bytes(data))


# --- happy paths ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_extract_writes_every_regular_file_with_its_bytes_and_skips_directories(
    layout: Layout, fmt: str
) -> None:
    # Just over one copy chunk, and random so that it barely compresses, like GGUF weights.
    weights = random.Random(7).randbytes(MIB + 7)
    members: list[Member] = [
        ("models/", None),
        ("models/m.gguf", weights),
        ("models/sub/", None),
        ("models/sub/readme.txt", b"read me\n"),
        ("empty-dir/", None),
        ("empty.txt", b""),
        ("top.bin", b"\x00\x01\x02"),
    ]
    archive = write_archive(fmt, layout.archives, members)

    extracted = extract(archive, layout.dest)

    files = [(name, data) for name, data in members if data is not None]
    assert extracted == [Extracted(name, len(data)) for name, data in files]
    assert layout.files_in_destination() == dict(files)
    assert not (layout.dest / "empty-dir").exists()
    layout.assert_nothing_outside_destination({archive.name})


@pytest.mark.parametrize("fmt", ["zip", "tar"])
def test_extract_reports_posix_rel_paths_without_dot_or_doubled_slashes(
    layout: Layout, fmt: str
) -> None:
    members: list[Member] = [
        ("./models/a.gguf", b"a"),
        ("models//b.gguf", b"bb"),
        ("models/./c/d.txt", b"ddd"),
    ]
    archive = write_archive(fmt, layout.archives, members)

    extracted = extract(archive, layout.dest)

    assert extracted == [
        Extracted("models/a.gguf", 1),
        Extracted("models/b.gguf", 2),
        Extracted("models/c/d.txt", 3),
    ]
    assert layout.files_in_destination() == {
        "models/a.gguf": b"a",
        "models/b.gguf": b"bb",
        "models/c/d.txt": b"ddd",
    }


def test_extract_creates_a_missing_destination_with_its_parents(tmp_path: Path) -> None:
    archive = write_zip(tmp_path / "bundle.zip", [("m.gguf", b"weights")])
    destination = tmp_path / "a" / "b" / "unpacked"

    assert extract(archive, destination) == [Extracted("m.gguf", 7)]
    assert (destination / "m.gguf").read_bytes() == b"weights"


def test_extract_accepts_a_zip_member_without_unix_mode_bits(layout: Layout) -> None:
    # Zips written on Windows (and by Java) leave the Unix half of external_attr at zero.
    archive = write_zip(layout.archives / "bundle.zip", [("m.gguf", b"weights")])
    patch_zip(archive, {"external_attr": 0x20})  # MS-DOS "archive" attribute only

    assert extract(archive, layout.dest) == [Extracted("m.gguf", 7)]


def test_extract_accepts_a_zip_member_written_by_zipfile_writestr_defaults(
    layout: Layout,
) -> None:
    archive = layout.archives / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("m.gguf", b"weights")  # external_attr = 0o600 << 16

    assert extract(archive, layout.dest) == [Extracted("m.gguf", 7)]


@pytest.mark.parametrize("suffix", ARCHIVE_SUFFIXES)
@pytest.mark.parametrize("case", [str.lower, str.upper, str.title])
def test_is_archive_recognises_each_suffix_in_any_case(
    suffix: str, case: Callable[[str], str]
) -> None:
    assert is_archive(case(f"model{suffix}"))
    assert is_archive(case(f"dir/with.dots/model-q4_k_m{suffix}"))


@pytest.mark.parametrize(
    "name",
    [
        "model.gguf",
        "model.gz",  # a gzip file, not a tarball
        "model.bz2",
        "model.xz",
        "model.zip.part",
        "model.tar.gz.sha256",
        "zip",
        "model_zip",
        "model.tar.zst",
        "",
    ],
)
def test_is_archive_rejects_other_names(name: str) -> None:
    assert not is_archive(name)


def test_archive_error_is_a_download_error_and_a_value_error() -> None:
    assert issubclass(ArchiveError, DownloadError)
    assert issubclass(ArchiveError, ValueError)


@pytest.mark.parametrize(
    "content", [b"", b"hello world\n" * 100, b"GGUF" + bytes(600)], ids=["empty", "text", "gguf"]
)
def test_extract_refuses_a_file_that_is_neither_zip_nor_tar(layout: Layout, content: bytes) -> None:
    archive = layout.archives / "model.tar.gz"
    archive.write_bytes(content)

    with pytest.raises(ArchiveError, match="not a zip or tar archive"):
        extract(archive, layout.dest)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "members", [[], [("models/", None), ("models/sub/", None)]], ids=["empty", "only-dirs"]
)
def test_extract_refuses_an_archive_without_files(
    layout: Layout, fmt: str, members: list[Member]
) -> None:
    archive = write_archive(fmt, layout.archives, members)

    with pytest.raises(ArchiveError, match="holds no files"):
        extract(archive, layout.dest)
    assert layout.files_in_destination() == {}


# --- traversal, links, devices, duplicates ------------------------------------------------

ESCAPING_NAMES = [
    "../x",
    "../../x",
    "a/../../x",
    "a/../x",  # stays inside once resolved, but any '..' is refused
    "a/..",
    "..",
    ".",
    "C:x",
    "C:/x",
    "c:\\x",
    "a\\b",
    "..\\x",
    "a/..\\..\\x",
    ".hidden",
    "a/.git/config",
    "models/.cache/m.gguf",
    "...",
]


@pytest.mark.parametrize("fmt", ["zip", "tar"])
@pytest.mark.parametrize("name", ESCAPING_NAMES)
def test_extract_refuses_a_member_whose_name_leaves_or_hides(
    layout: Layout, fmt: str, name: str
) -> None:
    archive = write_archive(fmt, layout.archives, [("ok.txt", b"fine"), (name, b"evil")])

    with pytest.raises(ArchiveError):
        extract(archive, layout.dest)
    layout.assert_nothing_outside_destination({archive.name})
    assert "evil" not in {data.decode() for data in layout.files_in_destination().values()}


@pytest.mark.parametrize("fmt", ["zip", "tar"])
@pytest.mark.parametrize("prefix", ["/", "//"])
def test_extract_refuses_an_absolute_member_name(layout: Layout, fmt: str, prefix: str) -> None:
    # The absolute path points into tmp (not /etc), so a regression cannot touch the system.
    target = layout.root / "absolute-x"
    name = prefix + target.as_posix().lstrip("/")
    archive = write_archive(fmt, layout.archives, [(name, b"evil")])

    with pytest.raises(ArchiveError, match="outside"):
        extract(archive, layout.dest)
    assert not target.exists()
    layout.assert_nothing_outside_destination({archive.name})


@pytest.mark.parametrize("fmt", ["zip", "tar"])
def test_a_nul_in_a_member_name_never_lets_its_tail_escape(layout: Layout, fmt: str) -> None:
    # tarfile writes a NUL as given; zipfile cuts the name at it, so the zip is patched. Both
    # cut the name at its first NUL when they read it, so the NUL check in _safe_name is a
    # second line; what matters is that the "../../x" after the NUL goes nowhere.
    if fmt == "tar":
        archive = write_tar(layout.archives / "bundle.tar", [("ok\x00../../x", b"data")])
    else:
        archive = write_zip(layout.archives / "bundle.zip", [("okX../../x", b"data")])
        raw = archive.read_bytes()
        assert raw.count(b"okX../../x") == 2  # the local header and the central directory
        archive.write_bytes(raw.replace(b"okX../../x", b"ok\x00../../x"))

    try:
        extracted = extract(archive, layout.dest)
    except ArchiveError:
        extracted = []
    layout.assert_nothing_outside_destination({archive.name})
    assert [item.rel_path for item in extracted] in ([], ["ok"])


SPECIAL_TAR_MEMBERS = {
    "symlink-absolute": (tarfile.SYMTYPE, "/etc/passwd", "a link"),
    "symlink-up": (tarfile.SYMTYPE, "../x", "a link"),
    "symlink-inside": (tarfile.SYMTYPE, "ok.txt", "a link"),
    "hardlink-inside": (tarfile.LNKTYPE, "ok.txt", "a link"),
    "hardlink-up": (tarfile.LNKTYPE, "../x", "a link"),
    "hardlink-absolute": (tarfile.LNKTYPE, "/etc/passwd", "a link"),
    "fifo": (tarfile.FIFOTYPE, "", "not a regular file"),
    "char-device": (tarfile.CHRTYPE, "", "not a regular file"),
    "block-device": (tarfile.BLKTYPE, "", "not a regular file"),
}


@pytest.mark.parametrize("kind", SPECIAL_TAR_MEMBERS)
def test_extract_refuses_a_tar_link_or_device_with_a_harmless_name(
    layout: Layout, kind: str
) -> None:
    member_type, linkname, message = SPECIAL_TAR_MEMBERS[kind]
    archive = write_tar_infos(
        layout.archives / "bundle.tar",
        [
            (tar_info("ok.txt", tarfile.REGTYPE, size=4), b"fine"),
            (tar_info("model.gguf", member_type, linkname=linkname), None),
        ],
    )

    with pytest.raises(ArchiveError, match=message):
        extract(archive, layout.dest)
    assert not (layout.dest / "model.gguf").exists()
    assert not (layout.dest / "model.gguf").is_symlink()
    layout.assert_nothing_outside_destination({archive.name})


def test_extract_refuses_a_tar_symlink_before_a_member_written_through_it(
    layout: Layout,
) -> None:
    archive = write_tar_infos(
        layout.archives / "bundle.tar",
        [
            (tar_info("escape", tarfile.SYMTYPE, linkname=".."), None),
            (tar_info("escape/x", tarfile.REGTYPE, size=4), b"evil"),
        ],
    )

    with pytest.raises(ArchiveError, match="a link"):
        extract(archive, layout.dest)
    layout.assert_nothing_outside_destination({archive.name})


@pytest.mark.parametrize(
    ("file_type", "message"),
    [
        (stat.S_IFLNK, "a link"),
        (stat.S_IFIFO, "not a regular file"),
        (stat.S_IFCHR, "not a regular file"),
        (stat.S_IFDIR, "not a regular file"),  # a directory mode on a name without '/'
    ],
)
def test_extract_refuses_a_zip_member_whose_unix_mode_is_not_a_regular_file(
    layout: Layout, file_type: int, message: str
) -> None:
    archive = write_zip(
        layout.archives / "bundle.zip",
        [("model.gguf", b"/etc/passwd")],
        file_attr=(file_type | 0o777) << 16,
    )

    with pytest.raises(ArchiveError, match=message):
        extract(archive, layout.dest)
    assert not (layout.dest / "model.gguf").exists()
    assert not (layout.dest / "model.gguf").is_symlink()
    layout.assert_nothing_outside_destination({archive.name})


@pytest.mark.parametrize("fmt", ["zip", "tar"])
@pytest.mark.parametrize(
    ("first", "second"),
    [("m.gguf", "m.gguf"), ("a/m.gguf", "./a/m.gguf"), ("a/m.gguf", "a//m.gguf"), ("a/b", "a")],
)
def test_extract_refuses_a_member_that_lands_on_an_earlier_one(
    layout: Layout, fmt: str, first: str, second: str
) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
        archive = write_archive(fmt, layout.archives, [(first, b"first"), (second, b"second")])

    with pytest.raises(ArchiveError, match="twice"):
        extract(archive, layout.dest)
    assert b"second" not in layout.files_in_destination().values()
    layout.assert_nothing_outside_destination({archive.name})


@pytest.mark.parametrize("fmt", ["zip", "tar"])
def test_extract_refuses_a_member_below_an_earlier_file(layout: Layout, fmt: str) -> None:
    archive = write_archive(fmt, layout.archives, [("a", b"file"), ("a/b", b"below")])

    with pytest.raises(ArchiveError):
        extract(archive, layout.dest)


def test_extract_refuses_an_encrypted_zip_member(layout: Layout) -> None:
    # zipfile cannot encrypt; setting flag bit 0 is enough for any reader to treat it so.
    archive = write_zip(layout.archives / "bundle.zip", [("m.gguf", b"secret weights")])
    patch_zip(archive, {"flag_bits": 0x1})

    with pytest.raises(ArchiveError, match="encrypted"):
        extract(archive, layout.dest)
    assert layout.files_in_destination() == {}


@pytest.mark.parametrize("damage", ["zip-bad-crc", "zip-bad-deflate", "tar.gz-truncated"])
def test_extract_reports_corrupt_member_data_as_archive_error(layout: Layout, damage: str) -> None:
    data = random.Random(3).randbytes(64 * KIB)
    if damage.startswith("zip"):
        archive = write_zip(layout.archives / "bundle.zip", [("m.gguf", data)])
        if damage == "zip-bad-crc":
            patch_zip(archive, {"crc": zlib.crc32(data) ^ 1})
        else:
            raw = bytearray(archive.read_bytes())
            raw[30 + len("m.gguf")] = 0xFF  # the first byte of the deflate stream: type 3
            archive.write_bytes(bytes(raw))
    else:
        archive = write_tar(layout.archives / "bundle.tar.gz", [("m.gguf", data)], "w:gz")
        raw = archive.read_bytes()
        archive.write_bytes(raw[: len(raw) // 2])

    with pytest.raises(ArchiveError):
        extract(archive, layout.dest)


# --- bombs and limits ------------------------------------------------------------------------

BOMB_BYTES = 50 * MIB


@pytest.fixture(scope="module")
def bomb_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """50 MiB of zeros as one member of a zip and of a tar.gz (each about 50 KiB)."""
    folder = tmp_path_factory.mktemp("bombs")
    write_zip(folder / "bomb.zip", [("m.gguf", bytes(BOMB_BYTES))])
    write_tar(folder / "bomb.tar.gz", [("m.gguf", bytes(BOMB_BYTES))], "w:gz")
    return folder


def bytes_under(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


@pytest.mark.parametrize("name", ["bomb.zip", "bomb.tar.gz"])
def test_a_bomb_stops_at_the_ratio_limit_with_its_partial_file_bounded(
    tmp_path: Path, bomb_folder: Path, name: str
) -> None:
    archive = bomb_folder / name
    archive_bytes = archive.stat().st_size
    assert archive_bytes < BOMB_BYTES // 100
    destination = tmp_path / "dest"

    with pytest.raises(ArchiveError, match="archive bomb") as caught:
        extract(archive, destination, ArchiveLimits(max_ratio=10))

    assert "10 times the archive" in str(caught.value)
    assert bytes_under(destination) <= 10 * archive_bytes + MIB


def test_a_bomb_is_refused_under_the_default_limits(tmp_path: Path, bomb_folder: Path) -> None:
    archive = bomb_folder / "bomb.zip"

    with pytest.raises(ArchiveError, match="archive bomb"):
        extract(archive, tmp_path / "dest")
    assert bytes_under(tmp_path / "dest") <= 200 * archive.stat().st_size + MIB


@pytest.mark.parametrize(
    ("claimed_size", "fix_crc"),
    [(1000, True), (0xFFFF_FFFE, False)],
    ids=["claims-1000-bytes", "claims-4-GiB"],
)
def test_a_zip_whose_header_lies_about_its_size_never_writes_past_the_limit(
    tmp_path: Path, bomb_folder: Path, claimed_size: int, fix_crc: bool
) -> None:
    archive = tmp_path / "liar.zip"
    archive.write_bytes((bomb_folder / "bomb.zip").read_bytes())
    patch = {"file_size": claimed_size}
    if fix_crc:  # so that zipfile has no reason of its own to refuse the member
        patch["crc"] = zlib.crc32(bytes(claimed_size))
    patch_zip(archive, patch)
    with zipfile.ZipFile(archive) as bundle:
        assert bundle.infolist()[0].file_size == claimed_size
    limit = 10 * archive.stat().st_size + MIB
    destination = tmp_path / "dest"

    try:
        extracted = extract(archive, destination, ArchiveLimits(max_ratio=10))
    except ArchiveError:
        extracted = None

    written = bytes_under(destination)
    assert written <= limit
    if extracted is not None:
        assert sum(item.size_bytes for item in extracted) == written


@pytest.mark.parametrize("fmt", ["zip", "tar.gz"])
def test_extract_refuses_more_members_than_max_members(layout: Layout, fmt: str) -> None:
    members: list[Member] = [(f"d{i}/", None) for i in range(3)]
    members += [(f"d0/f{i}.txt", b"x") for i in range(5)]
    archive = write_archive(fmt, layout.archives, members)

    with pytest.raises(ArchiveError, match="more than 4 members"):
        extract(archive, layout.root / "four", ArchiveLimits(max_members=4))
    # Directory entries do not count: five files fit a limit of five.
    assert len(extract(archive, layout.root / "five", ArchiveLimits(max_members=5))) == 5


@pytest.mark.parametrize("fmt", ["zip", "tar"])
def test_extract_refuses_more_bytes_than_max_total_bytes(layout: Layout, fmt: str) -> None:
    archive = write_archive(
        fmt, layout.archives, [("a.bin", b"a" * 600), ("b.bin", b"b" * 400), ("c.bin", b"c")]
    )
    generous_ratio = 1e9

    with pytest.raises(ArchiveError, match="more than 1000 bytes"):
        extract(
            archive,
            layout.root / "over",
            ArchiveLimits(max_total_bytes=1000, max_ratio=generous_ratio),
        )
    assert bytes_under(layout.root / "over") <= 1000

    exact = extract(
        archive,
        layout.root / "exact",
        ArchiveLimits(max_total_bytes=1001, max_ratio=generous_ratio),
    )
    assert [item.size_bytes for item in exact] == [600, 400, 1]


# --- properties ------------------------------------------------------------------------------

SEGMENTS = ["a", "b", ".", "..", "", ".x", "c:", "a\\..", "..."]


@st.composite
def member_names(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=5))
    name = ("/" if draw(st.booleans()) else "") + "/".join(parts)
    return name or "a"


def anchored(layout: Layout, name: str) -> str:
    return layout.root.as_posix() + "/absolute" + name if name.startswith("/") else name


def extract_in_fresh_layout(fmt: str, members: Sequence[Member]) -> None:
    """Extracts in a fresh layout, and checks the outcome: ArchiveError, or exactly the
    returned files on disk, each strictly inside the destination; nothing outside either way."""
    with tempfile.TemporaryDirectory() as top:
        layout = make_layout(Path(top))
        # An absolute name is re-anchored in root (still absolute), so that a regression that
        # honoured it would write where the check below looks, never outside tmp.
        members = [(anchored(layout, name), data) for name, data in members]
        if fmt == "zip":
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Duplicate name", UserWarning)
                archive = write_zip(layout.archives / "bundle.zip", members)
        else:
            archive = write_tar(layout.archives / "bundle.tar", members)
        try:
            extracted = extract(archive, layout.dest)
        except ArchiveError:
            extracted = None
        layout.assert_nothing_outside_destination({archive.name})
        if extracted is not None:
            on_disk = layout.files_in_destination()
            assert sorted(item.rel_path for item in extracted) == sorted(on_disk)
            for item in extracted:
                parts = item.rel_path.split("/")
                assert all(part and not part.startswith(".") for part in parts)
                assert "\\" not in item.rel_path
                assert ":" not in parts[0]
                assert item.size_bytes == len(on_disk[item.rel_path])


@settings(max_examples=120, deadline=None)
@given(fmt=st.sampled_from(["zip", "tar"]), name=member_names())
def test_any_single_member_name_lands_strictly_inside_or_is_refused(fmt: str, name: str) -> None:
    extract_in_fresh_layout(fmt, [(name, b"payload")])


@settings(max_examples=80, deadline=None)
@given(
    fmt=st.sampled_from(["zip", "tar"]),
    names=st.lists(st.tuples(member_names(), st.sampled_from(["m.gguf", "n.bin", ""])), max_size=4),
)
def test_several_members_never_write_outside_the_destination(
    fmt: str, names: list[tuple[str, str]]
) -> None:
    # File members end in a leaf that is never a folder segment, so no member can be a
    # folder of another; a directory entry ends in '/'.
    members: list[Member] = []
    for folder, leaf in names:
        name = folder.rstrip("/") + "/" + leaf if leaf else folder + "/"
        members.append((name, leaf.encode() if leaf else None))
    extract_in_fresh_layout(fmt, members)


def test_destination_is_created_with_only_the_archive_s_files(tmp_path: Path) -> None:
    archive = write_tar(tmp_path / "bundle.tar", [("m.gguf", b"w"), ("docs/x.md", b"# x")])
    destination = tmp_path / "unpacked"

    extract(archive, destination)

    assert sorted(path.relative_to(destination).as_posix() for path in destination.rglob("*")) == [
        "docs",
        "docs/x.md",
        "m.gguf",
    ]
    assert {path.name for path in tmp_path.iterdir()} == {"bundle.tar", "unpacked"}
