"""`vtp batches ls|show|watch|cancel|results`, and the end of a watched batch (printed, results downloaded)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from vtp_cli import session
from vtp_cli.batch_view import batch_table, summary, watch
from vtp_cli.commands.deploy import resolve
from vtp_cli.errors import ExitCode
from vtp_cli.options import JsonOpt, LimitOpt
from vtp_cli.output import as_data, num, out, print_json, when
from vtp_cli.progress import byte_bar

batches_app = typer.Typer(
    name="batches", help="Batch inference jobs: list, show, watch, cancel, download results.", no_args_is_help=True
)
DeploymentArg = Annotated[str, typer.Argument(help="Deployment id or name.")]
BatchArg = Annotated[uuid.UUID, typer.Argument(help="Batch id.")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="jsonl (a row per image) or coco (detect only).")]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="A file, or a folder for the server's name.")]


def download(client: Any, deployment_id: str, b: dict[str, Any], output: Path, fmt: str, quiet: bool) -> Path:
    """The batch's results in `fmt` saved to `output` (a file or a folder) under a byte bar; where they are."""
    total = ((b.get("results") or {}).get(fmt) or {}).get("size_bytes")
    with byte_bar(f"downloading {fmt} results", total, quiet=quiet) as bar:
        path: Path = client.batches.results(deployment_id, b["id"], output, format=fmt, progress=bar)
    return path


def finish(client: Any, deployment_id: str, b: dict[str, Any], output: Path | None, fmt: str, json_out: bool) -> None:
    """Print the batch (and download its results with `output`); exit 1 unless it succeeded."""
    saved = download(client, deployment_id, b, output, fmt, json_out) if output and b["status"] == "succeeded" else None
    if json_out:
        print_json({**b, "saved": str(saved)} if saved else b)
    else:
        out.print(batch_table(b))
        if saved:
            out.print(f"saved {saved}")
        elif b["status"] == "succeeded":
            out.print(f"next: vtp batches results {deployment_id} {b['id']} -o results.jsonl")
    if b["status"] != "succeeded":
        raise typer.Exit(ExitCode.FAILED)


@batches_app.command("ls")
def ls(
    deployment: DeploymentArg,
    status: Annotated[
        str | None, typer.Option("--status", help="queued, running, succeeded, failed or cancelled.")
    ] = None,
    limit: LimitOpt = 50,
    json_out: JsonOpt = False,
) -> None:
    """The deployment's batches, newest first (with an API key: the ones it submitted)."""
    with session.connect() as client:
        deployment_id = resolve(client, deployment)
        found = as_data(client.batches.list(deployment_id, status=status, limit=limit))
    if json_out:
        print_json({"items": found})
        return
    table = Table("id", "status", "images", "failed", "source", "created", "run s")
    for b in found:
        p, source = b.get("progress") or {}, b.get("source") or {}
        what = (
            f"snapshot {str(source.get('snapshot_id'))[:8]} {source.get('split')}"
            if source.get("kind") == "snapshot"
            else "zip"
        )
        timings = b.get("timings") or {}
        table.add_row(
            str(b["id"]), b["status"], f"{p.get('processed_images', 0)}/{p.get('total_images', 0)}",
            str(p.get("failed_images", 0)), what, when(timings.get("created_at")), num(timings.get("run_seconds"), 1),
        )  # fmt: skip
    out.print(table)


@batches_app.command("show")
def show(deployment: DeploymentArg, batch_id: BatchArg, json_out: JsonOpt = False) -> None:
    """One batch: status, progress, timings, results, error."""
    with session.connect() as client:
        deployment_id = resolve(client, deployment)
        b = as_data(client.batches.get(deployment_id, batch_id))
    if json_out:
        print_json(b)
        return
    out.print(batch_table(b))


@batches_app.command("watch")
def watch_command(
    deployment: DeploymentArg,
    batch_id: BatchArg,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Download the results here once it succeeded.")
    ] = None,
    fmt: FormatOpt = "jsonl",
    json_out: JsonOpt = False,
) -> None:
    """Watch a batch live to its end (Ctrl-C stops watching, not the batch). Exit code 1 unless it succeeded."""
    with session.connect() as client:
        deployment_id = resolve(client, deployment)
        b, detached = watch(client, deployment_id, str(batch_id), json_out)
        if not detached:
            finish(client, deployment_id, b, output, fmt, json_out)


@batches_app.command("cancel")
def cancel(deployment: DeploymentArg, batch_id: BatchArg, json_out: JsonOpt = False) -> None:
    """Cancel a batch: a queued one ends at once, a running one after its current chunk."""
    with session.connect() as client:
        deployment_id = resolve(client, deployment)
        b = as_data(client.batches.cancel(deployment_id, batch_id))
    if json_out:
        print_json(b)
        return
    out.print(f"batch {b['id']}: {summary(b)}, cancel requested")


@batches_app.command("results")
def results(
    deployment: DeploymentArg,
    batch_id: BatchArg,
    output: OutputOpt = Path(),
    fmt: FormatOpt = "jsonl",
    json_out: JsonOpt = False,
) -> None:
    """Download a succeeded batch's results: JSON Lines (a row per image) or COCO (detect)."""
    with session.connect() as client:
        deployment_id = resolve(client, deployment)
        b = as_data(client.batches.get(deployment_id, batch_id))
        path = download(client, deployment_id, b, output, fmt, json_out)
    if json_out:
        print_json({"path": str(path), "batch": b})
        return
    out.print(f"saved {path}")
