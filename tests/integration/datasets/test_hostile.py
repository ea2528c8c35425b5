"""Hostile uploads: zip slip, symlinks, bombs, lying names and content. Each has its own code."""

from __future__ import annotations

import base64
import io
import os
import stat
import uuid
import zipfile

import httpx
import pytest
from PIL import Image

from .conftest import StoredState, error_codes, upload
from .dice_builder import valid_detection

pytestmark = pytest.mark.integration
DET = "annotations_detection.json"


def _with_entries(*entries: tuple[zipfile.ZipInfo | str, bytes]) -> bytes:
    """A valid dataset zip plus hostile extra entries."""
    buf = io.BytesIO(valid_detection(3).build())
    with zipfile.ZipFile(buf, "a") as zf:
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


def _symlink() -> bytes:
    info = zipfile.ZipInfo("images/link.jpg")
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return _with_entries((info, b"/etc/passwd"))


def _many_entries() -> bytes:
    return _with_entries(*[(f"junk/{i}.txt", b"x") for i in range(400)])


def _too_large() -> bytes:
    info = zipfile.ZipInfo("padding.bin")
    info.compress_type = zipfile.ZIP_STORED
    return _with_entries((info, os.urandom(31 << 20)))


def _bomb() -> bytes:
    info = zipfile.ZipInfo("bomb.bin")
    info.compress_type = zipfile.ZIP_DEFLATED
    return _with_entries((info, bytes(20 << 20)))


def _big_json() -> bytes:
    dataset = valid_detection(3)
    dataset.docs[DET]["padding"] = base64.b64encode(os.urandom(3 << 20)).decode()  # incompressible
    return dataset.build()


def _pixel_bomb() -> bytes:
    dataset = valid_detection(3)
    image = dataset.docs[DET]["images"][0]
    buf = io.BytesIO()
    Image.new("1", (2500, 2000)).save(buf, "PNG")  # 5 MP, a few KB on the wire
    dataset.images[image["file_name"]] = buf.getvalue()
    image.update(width=2500, height=2000)
    return dataset.build()


def _html_as_jpg() -> bytes:
    dataset = valid_detection(3)
    dataset.images[dataset.docs[DET]["images"][0]["file_name"]] = b"<html><script>alert(1)</script></html>"
    return dataset.build()


CASES = {
    "zip_slip": (lambda: _with_entries(("../evil.txt", b"x")), "archive_rejected"),
    "zip_slip_absolute": (lambda: _with_entries(("/etc/evil.txt", b"x")), "archive_rejected"),
    "zip_symlink": (_symlink, "archive_rejected"),
    "invalid_entry_name": (lambda: _with_entries(("images/a\x01b.jpg", b"x")), "archive_rejected"),
    "too_many_entries": (_many_entries, "archive_rejected"),
    "archive_too_large": (_too_large, "archive_rejected"),
    "compression_ratio_exceeded": (_bomb, "archive_rejected"),
    "json_too_large": (_big_json, "archive_rejected"),
    "not_a_zip": (lambda: b"PK\x03\x04 this is not really a zip" + os.urandom(100), "archive_rejected"),
    "image_too_many_pixels": (_pixel_bomb, "dataset_invalid"),
    "unsupported_image_format": (_html_as_jpg, "dataset_invalid"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_upload_is_rejected_and_nothing_is_stored(admin: httpx.Client, stored: StoredState, case: str):
    build, top_code = CASES[case]
    with stored.unchanged():
        response = upload(admin, build(), f"hostile-{uuid.uuid4().hex[:6]}")
    assert response.status_code == 422, response.text
    assert response.json()["code"] == top_code
    assert case.removesuffix("_absolute") in error_codes(response)


def test_upload_over_the_size_limit_is_413(admin: httpx.Client, stored: StoredState):
    with stored.unchanged():
        response = upload(admin, os.urandom(41 << 20), f"huge-{uuid.uuid4().hex[:6]}")
    assert response.status_code == 413
    assert response.json()["code"] == "upload_too_large"


def test_not_multipart_is_415(admin: httpx.Client):
    response = admin.post("/api/v1/datasets", content=b"{}", headers={"content-type": "application/json"})
    assert response.status_code == 415 and response.json()["code"] == "multipart_required"


def test_an_empty_file_part_is_a_missing_file_not_a_500(admin: httpx.Client, stored: StoredState):
    # Found by schemathesis: an empty part is never written to disk, and the route unlinked '.'.
    with stored.unchanged():
        for path in ("/api/v1/datasets", f"/api/v1/datasets/{uuid.uuid4()}/versions"):
            files = {"file": ("empty.zip", b"", "application/zip")}
            response = admin.post(path, data={"name": f"empty-{uuid.uuid4().hex[:6]}"}, files=files)
            assert response.status_code == 422, response.text
            assert response.json()["errors"][0]["pointer"] == "#/form/file"


class _NoUtf8Flag(zipfile.ZipInfo):
    """Writes the name as UTF-8 bytes without the UTF-8 flag, as many old tools do."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:
        return self.filename.encode("utf-8"), self.flag_bits


def _legacy_name_zip(name: str) -> bytes:
    dataset = valid_detection(2)
    image = dataset.docs[DET]["images"][0]
    data = dataset.images.pop(image["file_name"])
    image["file_name"] = name
    buf = io.BytesIO(dataset.build())
    with zipfile.ZipFile(buf, "a") as zf:
        zf.writestr(_NoUtf8Flag("images/" + name), data)
    return buf.getvalue()


def test_utf8_names_without_the_utf8_flag_are_understood(admin: httpx.Client):
    response = upload(admin, _legacy_name_zip("café/été.jpg"), f"names-{uuid.uuid4().hex[:6]}")
    assert response.status_code == 201, response.text
