"""The API's shapes of batches: the upload form or JSON body, the batch view, the results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.requests import Request

from vtp_inference.domain.batches import Batch
from vtp_runtime.http.problems import ProblemError

COPY_CHUNK = 1 << 20
MAX_JSON = 65536
NEW_BATCH_FORM = {
    "type": "object",
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "A zip of images (jpg, png, bmp, webp, tif)."},
        "snapshot_id": {"type": "string", "format": "uuid", "description": "A dataset snapshot instead of `file`."},
        "split": {"type": "string", "enum": ["train", "val", "test", "all"], "default": "all"},
        "conf": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "iou": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "max_det": {"type": "integer", "minimum": 1, "maximum": 1000},
        "classes": {"type": "string", "description": "Class ids, comma-separated (or the field repeated)."},
        "imgsz": {"type": "integer", "description": "The export's input size (the only one it takes)."},
    },
}
NEW_BATCH_JSON = {
    "type": "object",
    "required": ["snapshot_id"],
    "properties": {
        **{k: v for k, v in NEW_BATCH_FORM["properties"].items() if k != "file"},  # type: ignore[attr-defined]
        "classes": {"type": "array", "items": {"type": "integer"}, "description": "Class ids."},
    },
}
RESULTS = {"content": {"application/x-ndjson": {}, "application/json": {}}, "description": "The results file"}


def batch_view(b: Batch) -> dict[str, Any]:
    base = f"/api/v1/deployments/{b.deployment_id}/batches/{b.id}"
    finished, started = b.finished_at, b.started_at
    results: dict[str, Any] = {}
    if "jsonl" in b.results:
        results["jsonl"] = {**b.results["jsonl"], "download": f"{base}/results"}
    if "coco" in b.results:
        results["coco"] = {**b.results["coco"], "download": f"{base}/results?format=coco"}
    source = {k: v for k, v in b.source.items() if k not in ("files", "image_ids")}
    return {
        "id": str(b.id),
        "deployment_id": str(b.deployment_id),
        "status": str(b.status),
        "task": b.task_type,
        "source": {**source, "images": b.total_images},
        "parameters": b.params,
        "progress": {
            "total_images": b.total_images,
            "processed_images": b.processed_images,
            "failed_images": b.failed_images,
            "chunk_size": b.chunk_size,
            "chunks_done": b.chunks_done,
            "total_chunks": b.total_chunks,
        },
        "quota": {"images_taken": b.total_images if b.quota_windows else 0, "images_returned": b.quota_returned},
        "attempt": b.attempt,
        "cancel_requested": b.cancel_requested,
        "timings": {
            "created_at": b.created_at.isoformat(),
            "started_at": started.isoformat() if started else None,
            "finished_at": finished.isoformat() if finished else None,
            "run_seconds": round((finished - started).total_seconds(), 3) if finished and started else None,
        },
        "results": results,
        "error": {"code": b.error_code, "message": b.error_message} if b.error_code else None,
    }


async def save_upload(item: UploadFile, dest: Path, limit: int) -> None:
    """Copy the zip part to disk, refused (413) past `limit` bytes whatever it declared."""
    size = 0
    with dest.open("wb") as out:
        while chunk := await item.read(COPY_CHUNK):
            size += len(chunk)
            if size > limit:
                raise ProblemError(413, "payload_too_large", "Payload too large", f"the zip may hold {limit} bytes")
            out.write(chunk)


async def json_fields(request: Request) -> dict[str, Any]:
    """A JSON object body of at most MAX_JSON bytes (a snapshot batch's fields)."""
    data = b""
    async for chunk in request.stream():
        data += chunk
        if len(data) > MAX_JSON:
            raise ProblemError(413, "payload_too_large", "Payload too large", f"a JSON body may hold {MAX_JSON} bytes")
    try:
        body = json.loads(data)
    except ValueError as exc:
        raise ProblemError(400, "invalid_json", "Invalid JSON", "the body is not JSON") from exc
    if not isinstance(body, dict):
        raise ProblemError(400, "invalid_json", "Invalid JSON", "the body is a JSON object")
    return body
