"""The API's shapes of batches: the upload form, the batch view, the results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile

from vtp_inference.domain.batches import Batch
from vtp_runtime.http.problems import ProblemError

COPY_CHUNK = 1 << 20
NEW_BATCH_FORM = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "A zip of images (jpg, png, bmp, webp, tif)."},
        "conf": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "iou": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "max_det": {"type": "integer", "minimum": 1, "maximum": 1000},
        "classes": {"type": "string", "description": "Class ids, comma-separated (or the field repeated)."},
        "imgsz": {"type": "integer", "description": "The export's input size (the only one it takes)."},
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
    source = {k: v for k, v in b.source.items() if k != "files"}
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
