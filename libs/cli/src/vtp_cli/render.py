"""Tables for the resources several commands print: a job, an export's parity report, detections."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from vtp_cli.output import num, short, size, when

JOB_METRICS = ("precision", "recall", "mAP50", "mAP50-95", "top1", "top5")


def job_table(job: dict[str, Any]) -> Table:
    """A job at a glance: status, model, progress, best epoch and metrics, timings, error."""
    table = Table(show_header=False, box=None, pad_edge=False, title=f"job {job['id']}", title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("name", str(job.get("name")))
    table.add_row("status", f"{job['status']} (attempt {job.get('attempt', 1)})")
    table.add_row("model", f"{job.get('model')} ({job.get('framework')}, {job.get('task_type')})")
    table.add_row("data", f"dataset {job.get('dataset_id')}, snapshot {job.get('snapshot_id')}")
    table.add_row("epochs", f"{job.get('epoch', 0)}/{job.get('total_epochs') or '-'}")
    best = job.get("best_metrics") or {}
    if best:
        shown = [k for k in JOB_METRICS if k in best] or sorted(best)
        metrics = ", ".join(f"{k} {num(best[k])}" for k in shown)
        table.add_row("best", f"epoch {job.get('best_epoch')}: {metrics}")
    timings = job.get("timings") or {}
    table.add_row("created", when(timings.get("created_at")))
    if timings.get("finished_at"):
        table.add_row("finished", when(timings.get("finished_at")))
    if job.get("runner_id"):
        table.add_row("runner", str(job["runner_id"]))
    for kind, checkpoint in sorted((job.get("checkpoints") or {}).items()):
        detail = f"epoch {checkpoint.get('epoch')}, {size(checkpoint.get('size_bytes'))}"
        table.add_row(f"{kind} checkpoint", f"{detail}, sha256 {short(checkpoint.get('sha256'), 16)}")
    if job.get("error"):
        error = job["error"]
        table.add_row("error", f"{error.get('code')}: {error.get('message')}")
    return table


def parity_table(parity: dict[str, Any]) -> Table:
    """The export's proof that it predicts what the checkpoint predicts, with each tolerance."""
    raw, metric = parity.get("raw") or {}, parity.get("metric") or {}
    tol = parity.get("tolerances") or {}
    verdict = "passed" if parity.get("passed") else "FAILED"
    title = f"parity {verdict} ({parity.get('precision', '?')}, {parity.get('letterbox', '')})"
    table = Table("check", "measured", "limit", title=title, title_justify="left")
    table.add_row("images compared", num(raw.get("images")), "")
    table.add_row("detections matched", f"{num(raw.get('matched'))} of {num(raw.get('detections'))}", "")
    table.add_row("max box diff (px)", num(raw.get("max_box_diff_px"), 4), num(tol.get("box_px")))
    table.add_row("max raw score diff", num(raw.get("max_score_diff_raw"), 4), num(tol.get("score")))
    table.add_row("min matched IoU", num(raw.get("min_iou"), 4), num(tol.get("min_iou")))
    table.add_row("max matched score diff", num(raw.get("max_score_diff"), 4), num(tol.get("score_diff")))
    table.add_row("class agreement", num(raw.get("class_agreement")), num(tol.get("class_agreement")))
    table.add_row("unmatched detections", num(raw.get("unmatched")), "0")
    if metric:
        name = metric.get("name", "metric")
        measured = (
            f"{num(metric.get('checkpoint'), 4)} -> {num(metric.get('export'), 4)} ({metric.get('delta', 0):+.4f})"
        )
        table.add_row(f"{name} checkpoint -> export", measured, f"±{num(tol.get('metric'))}")
    predictor = parity.get("predictor")
    if isinstance(predictor, dict):
        table.add_row("package predict.py", f"{num(predictor.get('mismatched'))} mismatched", "0")
    return table


def detections_table(name: str, image: dict[str, Any]) -> Table:
    """One image's answer: a row per detection (class, confidence, box), plus what else the task adds."""
    found = image.get("detections") or []
    timings = image.get("timings_ms") or {}
    total = sum(v for v in timings.values() if isinstance(v, int | float))
    top5 = image.get("top5") or []
    what = f"top {len(top5)} classes" if top5 and not found else f"{len(found)} detection(s)"
    title = f"{name}: {image.get('width')}x{image.get('height')}, {what}, {total:.1f} ms"
    extras = any(d.get("polygons") or d.get("keypoints") for d in found)
    columns = ["class", "conf", "x1", "y1", "x2", "y2"] + (["mask / keypoints"] if extras else [])
    table = Table(*columns, title=title, title_justify="left")
    for d in found:
        x1, y1, x2, y2 = (f"{v:.1f}" for v in d.get("xyxy", [0, 0, 0, 0]))
        extra = []
        if d.get("polygons"):
            extra.append(f"mask ({len(d['polygons'])} polygon{'s' if len(d['polygons']) > 1 else ''})")
        if d.get("keypoints"):
            extra.append(f"{len(d['keypoints'])} keypoints")
        row = [f"{d.get('class_name')} ({d.get('class_id')})", f"{d.get('confidence', 0):.3f}", x1, y1, x2, y2]
        table.add_row(*row, *([", ".join(extra)] if extras else []))
    for c in top5:  # a classification answer
        table.add_row(f"{c.get('class_name')} ({c.get('class_id')})", f"{c.get('confidence', 0):.3f}")
    return table
