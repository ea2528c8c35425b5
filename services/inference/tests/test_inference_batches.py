"""Batches without the stack: the zip check (hostile archives, every problem), chunks, COCO."""

from __future__ import annotations

import io
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path

from PIL import Image

from vtp_dice.archive import ArchiveLimits
from vtp_inference.domain.batch_coco import coco_document
from vtp_inference.domain.batches import Batch, BatchStatus, chunk_count
from vtp_inference.predict.images import Limits
from vtp_inference.service_layer.batch_inputs import check_zip

LIMITS = Limits(1 << 20, 1_000_000)


def _jpeg(size: tuple[int, int] = (32, 24)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(out, "JPEG")
    return out.getvalue()


def _zip(tmp_path: Path, files: dict[str, bytes]) -> Path:
    path = tmp_path / "in.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def test_images_of_a_folder_zip_in_order_other_files_ignored(tmp_path: Path) -> None:
    path = _zip(tmp_path, {"set/b.jpg": _jpeg(), "set/a.png": _jpeg(), "set/notes.txt": b"hi"})
    checked = check_zip(path, ArchiveLimits(), LIMITS, 10)
    assert checked.problems == [] and checked.files == ["a.png", "b.jpg"]


def test_every_bad_image_is_reported(tmp_path: Path) -> None:
    big = _jpeg((2000, 1000))  # 2 M pixels > 1 M
    path = _zip(tmp_path, {"ok.jpg": _jpeg(), "junk.jpg": b"nope", "empty.png": b"", "big.jpg": big})
    problems = check_zip(path, ArchiveLimits(), LIMITS, 10).problems
    assert sorted((p.pointer, p.code) for p in problems) == [
        ("/file/big.jpg", "image_too_many_pixels"),
        ("/file/empty.png", "image_empty"),
        ("/file/junk.jpg", "image_undecodable"),
    ]


def test_hostile_or_empty_archives(tmp_path: Path) -> None:
    not_zip = tmp_path / "x.zip"
    not_zip.write_bytes(b"plain text")
    assert [p.code for p in check_zip(not_zip, ArchiveLimits(), LIMITS, 10).problems] == ["not_a_zip"]
    slip = _zip(tmp_path, {"../up.jpg": _jpeg(), "a.jpg": _jpeg()})
    assert [p.code for p in check_zip(slip, ArchiveLimits(), LIMITS, 10).problems] == ["zip_slip"]
    many = _zip(tmp_path, {f"{i}.jpg": _jpeg() for i in range(4)})
    assert [p.code for p in check_zip(many, ArchiveLimits(), LIMITS, 3).problems] == ["too_many_images"]
    none = _zip(tmp_path, {"a.txt": b"x"})
    assert [p.code for p in check_zip(none, ArchiveLimits(), LIMITS, 3).problems] == ["no_images"]


def test_chunks_cover_every_file_once() -> None:
    files = [f"{i}.jpg" for i in range(10)]
    batch = Batch(
        uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), None, BatchStatus.QUEUED, "detect",
        {"files": files}, {}, len(files), 4, datetime.now(UTC),
    )  # fmt: skip
    assert batch.total_chunks == chunk_count(10, 4) == 3
    assert [f for k in range(batch.total_chunks) for f in batch.chunk_files(k)] == files


def test_coco_from_rows() -> None:
    rows = [
        {"index": 0, "file": "a.jpg", "width": 10, "height": 8,
         "detections": [{"class_id": 1, "confidence": 0.5, "xyxy": [1.0, 2.0, 4.0, 6.0]}]},
        {"index": 1, "file": "b.jpg", "error": {"code": "image_undecodable", "message": "x"}},
    ]  # fmt: skip
    coco = coco_document(rows, {"0": "cat", "1": "dog"})
    assert coco["images"] == [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 8}]
    assert coco["categories"] == [{"id": 0, "name": "cat"}, {"id": 1, "name": "dog"}]
    assert coco["annotations"] == [
        {
            "id": 1,
            "image_id": 1,
            "category_id": 1,
            "bbox": [1.0, 2.0, 3.0, 4.0],
            "area": 12.0,
            "score": 0.5,
            "iscrowd": 0,
        }
    ]
