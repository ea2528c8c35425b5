"""A batch for people: its one-line summary, its table, and a live watch of it (polled, a progress bar)."""

from __future__ import annotations

import time
from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from vtp_cli.output import as_data, err, pairs, size, when

TERMINAL = ("succeeded", "failed", "cancelled")
POLL_SECONDS = 1.0


def summary(b: dict[str, Any]) -> str:
    """One line: `queued 0/20 images`, `running 8/20 images (1 failed)`, ..."""
    p = b.get("progress") or {}
    done = f"{p.get('processed_images', 0)}/{p.get('total_images', 0)} images"
    failed = f" ({p['failed_images']} failed)" if p.get("failed_images") else ""
    return f"{b['status']} {done}{failed}"


def batch_table(b: dict[str, Any]) -> Table:
    """A batch at a glance: status, source, parameters, progress, timings, results, error."""
    table = Table(show_header=False, box=None, pad_edge=False, title=f"batch {b['id']}", title_justify="left")
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("deployment", f"{b['deployment_id']} ({b.get('task')})")
    table.add_row(
        "status",
        f"{summary(b)}, attempt {b.get('attempt', 1)}"
        + (" (cancel requested)" if b.get("cancel_requested") and b["status"] not in TERMINAL else ""),
    )
    source = b.get("source") or {}
    if source.get("kind") == "snapshot":
        table.add_row("source", f"snapshot {source.get('snapshot_id')}, split {source.get('split')}")
    else:
        table.add_row("source", f"zip, {size(source.get('size_bytes'))}, sha256 {source.get('sha256')}")
    table.add_row("parameters", pairs(b.get("parameters")))
    p = b.get("progress") or {}
    table.add_row("chunks", f"{p.get('chunks_done', 0)}/{p.get('total_chunks', 0)} of {p.get('chunk_size')} images")
    timings = b.get("timings") or {}
    table.add_row("created", when(timings.get("created_at")))
    if timings.get("finished_at"):
        table.add_row("finished", f"{when(timings['finished_at'])} (ran {timings.get('run_seconds')} s)")
    for fmt, stored in sorted((b.get("results") or {}).items()):
        table.add_row(f"results {fmt}", f"{size(stored.get('size_bytes'))}, {stored.get('download')}")
    if b.get("error"):
        table.add_row("error", f"{b['error'].get('code')}: {b['error'].get('message')}")
    return table


def watch(client: Any, deployment_id: str, batch_id: str, quiet: bool) -> tuple[dict[str, Any], bool]:
    """Poll until the batch ends, with a progress bar over its images; (batch, detached by Ctrl-C)."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("images"),
               TextColumn("{task.fields[failed]}"), TimeElapsedColumn())  # fmt: skip
    b: dict[str, Any] = as_data(client.batches.get(deployment_id, batch_id))
    try:
        with Progress(*columns, console=err, transient=True, disable=quiet) as bar:
            task = bar.add_task(b["status"], total=None, failed="")
            while True:
                p = b.get("progress") or {}
                failed = f"({p['failed_images']} failed)" if p.get("failed_images") else ""
                total = p.get("total_images") or None
                bar.update(
                    task, description=b["status"], completed=p.get("processed_images", 0), total=total, failed=failed
                )
                if b["status"] in TERMINAL:
                    return b, False
                time.sleep(POLL_SECONDS)
                b = as_data(client.batches.get(deployment_id, batch_id))
    except KeyboardInterrupt:
        err.print(f"stopped watching; the batch goes on: vtp batches watch {deployment_id} {batch_id}"
                  f"   (or vtp batches cancel {deployment_id} {batch_id})")  # fmt: skip
        return b, True
