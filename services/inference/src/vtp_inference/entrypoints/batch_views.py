"""The API's view of a batch."""

from __future__ import annotations

from typing import Any

from vtp_inference.domain.batches import Batch


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
