"""`vtp export JOB --format onnx` (waits and prints the parity report) and `vtp exports ls|show|download`."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from vtp_cli import session
from vtp_cli.errors import ExitCode
from vtp_cli.kv import parse_pairs
from vtp_cli.options import JsonOpt, LimitOpt, OffsetOpt
from vtp_cli.output import as_data, err, items, out, pairs, print_json, short, size, when
from vtp_cli.progress import byte_bar
from vtp_cli.render import parity_table

exports_app = typer.Typer(name="exports", help="Exports: list, show, download.", no_args_is_help=True)
FINISHED = ("succeeded", "failed")


def register(app: typer.Typer) -> None:
    app.command("export")(export)
    app.add_typer(exports_app)


def wait_export(client: Any, export_id: str, quiet: bool) -> dict[str, Any]:
    """Poll until the export succeeded or failed, showing its stage."""
    with err.status("queued", spinner="dots") as status:
        while True:
            export: dict[str, Any] = as_data(client.exports.get(export_id))
            if export["status"] in FINISHED:
                return export
            if not quiet:
                status.update(f"{export['status']} {export.get('stage') or ''} (attempt {export.get('attempt', 1)})")
            time.sleep(1.0)


def print_export(export: dict[str, Any]) -> None:
    """Status, artifact, the parity report and the error of an export."""
    head = f"export {export['id']} {export['name']} of job {export['job_id']}: {export['format']} {export['status']}"
    out.print(head)
    checkpoint = export.get("checkpoint") or {}
    which = f"{checkpoint.get('kind')} (epoch {checkpoint.get('epoch')})"
    out.print(f"options   {pairs(export.get('options'))}; checkpoint {which}")
    if export.get("artifact"):
        artifact = export["artifact"]
        out.print(f"package   {size(artifact.get('size_bytes'))}, sha256 {artifact.get('sha256')}")
    if export.get("parity"):
        out.print(parity_table(export["parity"]))
        for failure in export["parity"].get("failures") or []:
            out.print(f"  failed: {failure}", style="red", markup=False)
    if export.get("error"):
        out.print(f"error     {export['error'].get('code')}: {export['error'].get('message')}", markup=False)


def export(
    job_id: Annotated[uuid.UUID, typer.Argument(help="The training job whose checkpoint to export.")],
    options: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="KEY=VALUE...",
            help="Export options as key=value: imgsz=640, dynamic=true, opset=17, ...",
            show_default=False,
        ),
    ] = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="onnx, torchscript, openvino, ncnn, ...")] = "onnx",
    half: Annotated[bool, typer.Option("--half", help="FP16 weights (formats that take it).")] = False,
    checkpoint: Annotated[str, typer.Option("--checkpoint", help="best, last, or an epoch number.")] = "best",
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the export and its parity report.")] = True,
    json_out: JsonOpt = False,
) -> None:
    """Export a job's checkpoint, wait for it and print its parity report; exit 1 when it fails."""
    values = parse_pairs(options or [], "OPTIONS")
    if half:
        values["half"] = True
    which: str | int = int(checkpoint) if checkpoint.isdigit() else checkpoint
    with session.connect() as client:
        created = as_data(client.exports.create(job_id, fmt, checkpoint=which, options=values))
        if not json_out:
            out.print(f"export {created['id']} ({created['name']}, {created['format']}) {created['status']}")
        final = wait_export(client, str(created["id"]), json_out) if wait else created
    if json_out:
        print_json(final)
    else:
        print_export(final)
        if final["status"] == "succeeded":
            out.print(f"next: vtp deploy {final['id']}")
    if final["status"] == "failed":
        raise typer.Exit(ExitCode.FAILED)


@exports_app.command("ls")
def ls(
    job: Annotated[uuid.UUID | None, typer.Option("--job", help="Only this job's exports.")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="Only this format.")] = None,
    status: Annotated[str | None, typer.Option("--status", help="queued, running, succeeded or failed.")] = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """The project's exports."""
    with session.connect() as client:
        page = client.exports.list(job_id=job, format=fmt, status=status, limit=limit, offset=offset)
    if json_out:
        print_json(page)
        return
    table = Table("id", "job", "name", "format", "status", "parity", "size", "default", "created")
    for e in items(page):
        parity = e.get("parity") or {}
        verdict = "-" if not parity else "passed" if parity.get("passed") else "failed"
        table.add_row(
            str(e["id"]),
            short(e["job_id"]),
            e["name"],
            e["format"],
            e["status"],
            verdict,
            size((e.get("artifact") or {}).get("size_bytes")),
            "yes" if e.get("is_default") else "",
            when((e.get("timings") or {}).get("created_at")),
        )
    out.print(table)


@exports_app.command("show")
def show(export_id: Annotated[uuid.UUID, typer.Argument(help="Export id.")], json_out: JsonOpt = False) -> None:
    """One export with its parity report."""
    with session.connect() as client:
        found = client.exports.get(export_id)
    if json_out:
        print_json(found)
        return
    print_export(as_data(found))


@exports_app.command("download")
def download(
    export_id: Annotated[uuid.UUID, typer.Argument(help="Export id.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="A file, or a folder for the server's name.")] = Path(),
    json_out: JsonOpt = False,
) -> None:
    """Download the export's package (zip: model, metadata.json, predict.py, README), sha256 checked."""
    with session.connect() as client:
        found = as_data(client.exports.get(export_id))
        total = (found.get("artifact") or {}).get("size_bytes")
        with byte_bar(f"downloading {found['name']} {found['format']}", total, quiet=json_out) as bar:
            path = client.exports.download(export_id, output, progress=bar)
    if json_out:
        print_json({"path": str(path), "export": found})
        return
    out.print(f"saved {path}")
