"""Streaming multipart upload: the file part goes straight to disk, never whole into memory.

python-multipart parses the request body chunk by chunk as it arrives; the
file part is written to a temporary file in the upload directory. The size
limit is enforced on the bytes actually received, not on what the client
claims, and a rejected upload leaves no file behind.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import Field, File, FormParser, parse_options_header

from vtp_runtime.http.problems import ProblemError

MAX_FIELD_BYTES = 64 * 1024


@dataclass
class Upload:
    """What a multipart request carried: text fields and at most one file on disk."""

    fields: dict[str, str] = field(default_factory=dict)
    file_path: Path | None = None
    file_field: str | None = None

    def discard(self) -> None:
        if self.file_path is not None:
            with contextlib.suppress(FileNotFoundError):
                self.file_path.unlink()
            self.file_path = None


async def receive_upload(
    content_type: str, content_length: str | None, body: AsyncIterator[bytes], upload_dir: Path, max_bytes: int
) -> Upload:
    """Parse a multipart/form-data body; raises ProblemError 400/413/415 on bad input."""
    mime, params = parse_options_header(content_type)
    if mime != b"multipart/form-data" or b"boundary" not in params:
        raise ProblemError(
            415, "multipart_required", "multipart/form-data required", "Send the zip as form field `file`."
        )
    if content_length and content_length.isdigit() and int(content_length) > max_bytes:
        raise _too_large(max_bytes)
    upload_dir.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (one cheap syscall per upload)
    upload = Upload()
    files: list[File] = []

    def on_field(item: Field) -> None:
        name = item.field_name.decode("utf-8", "replace") if item.field_name else ""
        upload.fields[name] = (item.value or b"").decode("utf-8", "replace")

    def on_file(item: File) -> None:
        files.append(item)

    config: dict[str, Any] = {
        "UPLOAD_DIR": str(upload_dir),
        "UPLOAD_DELETE_TMP": False,
        "MAX_MEMORY_FILE_SIZE": 0,  # straight to disk
        "MAX_BODY_SIZE": max_bytes,
    }
    parser = FormParser(mime.decode(), on_field, on_file, boundary=params[b"boundary"], config=config)
    received = 0
    try:
        async for chunk in body:
            received += len(chunk)
            if received > max_bytes:
                raise _too_large(max_bytes)
            parser.write(chunk)
        parser.finalize()
    except FormParserError as exc:
        _remove(files)
        raise ProblemError(400, "malformed_multipart", "Malformed multipart body", str(exc)) from exc
    except BaseException:
        _remove(files)
        raise
    if len(files) > 1:
        _remove(files)
        raise ProblemError(400, "too_many_files", "One file per upload", "Send exactly one `file` part.")
    if files:
        item = files[0]
        item.file_object.close()
        # An empty part is never written to disk (no file name): it counts as no file at all.
        if item.actual_file_name:
            upload.file_path = Path(os.fsdecode(item.actual_file_name))
            upload.file_field = item.field_name.decode() if item.field_name else None
    if any(len(v) > MAX_FIELD_BYTES for v in upload.fields.values()):
        upload.discard()
        raise ProblemError(
            413, "field_too_large", "Form field too large", f"Fields are limited to {MAX_FIELD_BYTES} bytes."
        )
    return upload


def _too_large(max_bytes: int) -> ProblemError:
    return ProblemError(413, "upload_too_large", "Upload too large", f"The limit is {max_bytes} bytes.")


def _remove(files: list[File]) -> None:
    for item in files:
        with contextlib.suppress(OSError):
            item.file_object.close()
            if item.actual_file_name:
                os.unlink(item.actual_file_name)
