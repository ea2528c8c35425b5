"""Safe reading of uploaded DICE zips: every hostile trick is named, all at once."""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from vtp_dice.archive import ArchiveLimits, limited_reader, open_archive
from vtp_dice.format import DatasetRejected

ANN = "annotations_detection.json"
DOC = b'{"format_version": "1.0"}'

Entry = tuple[str | zipfile.ZipInfo, bytes]


def make_zip(
    path: Path,
    entries: Sequence[Entry],
    *,
    compression: int = zipfile.ZIP_STORED,
    tamper: Callable[[list[zipfile.ZipInfo]], None] | None = None,
) -> Path:
    """Write a zip; `tamper` edits the ZipInfos after the data is written, so only the central directory lies."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in entries:
            zf.writestr(name, data)
        if tamper is not None:
            tamper(zf.infolist())
    return path


def codes(exc: pytest.ExceptionInfo[DatasetRejected]) -> list[str]:
    return [p.code for p in exc.value.problems]


def rejected(path: Path, limits: ArchiveLimits | None = None) -> pytest.ExceptionInfo[DatasetRejected]:
    with pytest.raises(DatasetRejected) as exc:
        open_archive(path, limits or ArchiveLimits())
    return exc


def test_a_good_archive_is_indexed(tmp_path: Path) -> None:
    entries: list[Entry] = [
        (ANN, DOC),
        ("annotations.json", DOC),
        ("metadata.json", b"{}"),
        ("images/", b""),
        ("images/a/1.jpg", b"x"),
        ("images\\b\\2.png", b"y"),  # a Windows tool's separators are normalised
        ("README.txt", b"hi"),
    ]
    with open_archive(make_zip(tmp_path / "ok.zip", entries), ArchiveLimits()) as archive:
        assert archive.root == ""
        assert sorted(archive.annotation_files) == ["annotations.json", ANN]
        assert archive.metadata is not None and archive.metadata.filename == "metadata.json"
        assert sorted(archive.images) == ["a/1.jpg", "b/2.png"]
        assert archive.other == ["README.txt"]
        assert archive.read_json(ANN) == DOC
        assert archive.read_json("metadata.json") == b"{}"
        with archive.open_image("b/2.png") as stream:
            assert stream.read() == b"y"
        with pytest.raises(KeyError):
            archive.read_json("nope.json")


def test_single_top_folder_is_the_root_and_mac_junk_is_ignored(tmp_path: Path) -> None:
    entries: list[Entry] = [
        ("ds/", b""),
        (f"ds/{ANN}", DOC),
        ("ds/images/x.jpg", b"x"),
        ("ds/images/.DS_Store", b"junk"),
        ("__MACOSX/ds/._x.jpg", b"junk"),
        (".DS_Store", b"junk"),
    ]
    with open_archive(make_zip(tmp_path / "r.zip", entries)) as archive:
        assert archive.root == "ds/"
        assert list(archive.annotation_files) == [ANN]
        assert list(archive.images) == ["x.jpg"]
        assert archive.other == []


def test_not_a_zip(tmp_path: Path) -> None:
    (tmp_path / "a.zip").write_bytes(b"<html>not a zip</html>")
    assert codes(rejected(tmp_path / "a.zip")) == ["not_a_zip"]
    good = make_zip(tmp_path / "b.zip", [(ANN, DOC)]).read_bytes()
    (tmp_path / "c.zip").write_bytes(good[:-10])  # central directory cut short
    exc = rejected(tmp_path / "c.zip")
    assert codes(exc) == ["not_a_zip"] and exc.value.kind == "archive"


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/passwd", "C:/win.ini", "images\\..\\..\\evil", "a/../../b"])
def test_zip_slip(tmp_path: Path, name: str) -> None:
    exc = rejected(make_zip(tmp_path / "s.zip", [(ANN, DOC), (name, b"x")]))
    assert codes(exc) == ["zip_slip"]
    assert exc.value.problems[0].file == name


def test_zip_symlink(tmp_path: Path) -> None:
    link = zipfile.ZipInfo("images/link.jpg")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    exc = rejected(make_zip(tmp_path / "l.zip", [(ANN, DOC), (link, b"/etc/passwd")]))
    assert codes(exc) == ["zip_symlink"] and exc.value.problems[0].file == "images/link.jpg"


def test_control_characters_and_nul_in_names(tmp_path: Path) -> None:
    nul = zipfile.ZipInfo("images/a.jpg")
    nul.filename = "images/a.jpg\x00../../x"  # zipfile would hide everything after the NUL
    exc = rejected(make_zip(tmp_path / "c.zip", [(ANN, DOC), ("images/b\x01.jpg", b"x"), (nul, b"x")]))
    assert "invalid_entry_name" in codes(exc) and "zip_slip" in codes(exc)
    files = {p.file for p in exc.value.problems}
    assert "images/b\\x01.jpg" in files and "images/a.jpg\\x00../../x" in files  # escaped for display


def test_all_problems_reported_at_once_and_capped(tmp_path: Path) -> None:
    entries = [(ANN, DOC), *[(f"../e{i}", b"x") for i in range(10)]]
    exc = rejected(make_zip(tmp_path / "m.zip", entries))
    assert codes(exc) == ["zip_slip"] * 10
    exc = rejected(tmp_path / "m.zip", ArchiveLimits(max_problems=3))
    assert codes(exc) == ["zip_slip"] * 3 + ["too_many_problems"]


def test_too_many_entries(tmp_path: Path) -> None:
    entries = [(ANN, DOC), *[(f"images/{i}.jpg", b"x") for i in range(10)]]
    exc = rejected(make_zip(tmp_path / "n.zip", entries), ArchiveLimits(max_entries=5))
    assert codes(exc) == ["too_many_entries"]


def test_archive_too_large_by_declared_sizes(tmp_path: Path) -> None:
    exc = rejected(
        make_zip(tmp_path / "t.zip", [(ANN, DOC), ("images/a.jpg", b"x" * 500)]),
        ArchiveLimits(max_total_uncompressed=100),
    )
    assert codes(exc) == ["archive_too_large"]


def test_zip_bomb_compression_ratio(tmp_path: Path) -> None:
    entries: list[Entry] = [(ANN, DOC), ("images/bomb.jpg", bytes(4 << 20)), ("images/small.jpg", bytes(1000))]
    exc = rejected(make_zip(tmp_path / "b.zip", entries, compression=zipfile.ZIP_DEFLATED))
    assert codes(exc) == ["compression_ratio_exceeded"]  # the tiny, very compressible file does not trip it
    assert exc.value.problems[0].file == "images/bomb.jpg"


def test_json_too_large(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "j.zip", [(ANN, b" " * 100 + DOC), ("metadata.json", b"{}" * 100)])
    exc = rejected(path, ArchiveLimits(max_json_bytes=50))
    assert codes(exc) == ["json_too_large", "json_too_large"]


def test_encrypted_entry(tmp_path: Path) -> None:
    def encrypt(infos: list[zipfile.ZipInfo]) -> None:
        infos[1].flag_bits |= 0x1

    exc = rejected(make_zip(tmp_path / "e.zip", [(ANN, DOC), ("images/a.jpg", b"x")], tamper=encrypt))
    assert codes(exc) == ["encrypted_entry"]


def test_unsupported_compression(tmp_path: Path) -> None:
    def aes(infos: list[zipfile.ZipInfo]) -> None:
        infos[1].compress_type = 99

    exc = rejected(make_zip(tmp_path / "u.zip", [(ANN, DOC), ("images/a.jpg", b"x")], tamper=aes))
    assert codes(exc) == ["unsupported_compression"]


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_duplicate_entry(tmp_path: Path) -> None:
    entries: list[Entry] = [(ANN, DOC), (ANN, DOC), ("images/a.jpg", b"x"), ("images\\a.jpg", b"y")]
    exc = rejected(make_zip(tmp_path / "d.zip", entries))
    assert codes(exc) == ["duplicate_entry", "duplicate_entry"]


def test_invalid_image_name_and_image_too_large(tmp_path: Path) -> None:
    entries: list[Entry] = [(ANN, DOC), ("images/a//b.jpg", b"x"), ("images/big.jpg", b"x" * 100)]
    exc = rejected(make_zip(tmp_path / "i.zip", entries), ArchiveLimits(max_image_bytes=50))
    assert codes(exc) == ["invalid_entry_name", "image_too_large"]


def test_no_annotation_file_is_a_content_problem(tmp_path: Path) -> None:
    exc = rejected(make_zip(tmp_path / "n.zip", [("images/a.jpg", b"x"), ("notes/annotations.json", DOC)]))
    assert codes(exc) == ["no_annotation_file"] and exc.value.kind == "content"


def test_declared_size_lie_is_caught_when_reading(tmp_path: Path) -> None:
    def shrink(infos: list[zipfile.ZipInfo]) -> None:
        infos[0].file_size = 10  # central directory claims 10 bytes, the entry holds far more

    path = make_zip(tmp_path / "l.zip", [(ANN, b" " * 5000 + DOC)], tamper=shrink)
    with open_archive(path) as archive, pytest.raises(DatasetRejected) as exc:
        archive.read_json(ANN)
    # zipfile stops at the declared size, and the CRC of what it read no longer matches.
    assert codes(exc) == ["corrupt_entry"] and exc.value.problems[0].file == ANN


def test_limited_reader_counts_bytes_actually_produced() -> None:
    reader = limited_reader(io.BytesIO(b"x" * 100), 99, "json_too_large", ANN)
    with pytest.raises(DatasetRejected) as exc:
        reader.read()
    assert codes(exc) == ["json_too_large"]
    with pytest.raises(DatasetRejected) as exc:
        reader = limited_reader(io.BytesIO(b"x" * 100), 50, "archive_too_large", "images/a.jpg")
        while reader.read(7):
            pass
    assert codes(exc) == ["archive_too_large"]
    assert limited_reader(io.BytesIO(b"x" * 100), 100, "json_too_large", ANN).read() == b"x" * 100


def _rename(path: Path, placeholder: bytes, raw: bytes) -> None:
    """Replace a name's bytes in local and central headers; the UTF-8 flag stays unset (ASCII placeholder)."""
    assert len(placeholder) == len(raw)
    path.write_bytes(path.read_bytes().replace(placeholder, raw))


def test_cp437_name_without_utf8_flag(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "cp.zip", [(ANN, DOC), ("images/cafe.jpg", b"x")])
    _rename(path, b"cafe", "café".encode("cp437"))  # b"caf\x82" is not valid UTF-8
    with open_archive(path) as archive:
        assert list(archive.images) == ["café.jpg"]
        assert archive.open_image("café.jpg").read() == b"x"


def test_utf8_name_without_utf8_flag(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "u8.zip", [(ANN, DOC), ("images/cafeX.jpg", b"x"), ("images/日本XXXX.jpg", b"y")])
    _rename(path, b"cafeX", "café".encode())
    with open_archive(path) as archive:
        assert sorted(archive.images) == ["café.jpg", "日本XXXX.jpg"]  # the second has the flag set
        assert archive.open_image("café.jpg").read() == b"x"


def test_new_handle_reads_the_same_file(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "h.zip", [(ANN, DOC), ("images/a.jpg", b"abc")])
    with (
        open_archive(path) as archive,
        archive.new_handle() as handle,
        archive.open_image("a.jpg", handle) as stream,
    ):
        assert stream.read() == b"abc"
