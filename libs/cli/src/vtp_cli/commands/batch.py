"""`vtp batch DEPLOYMENT zip|folder|snapshot=ID` (watched live) and `vtp batches ls|show|watch|cancel|results`."""

from __future__ import annotations

import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from vtp_cli import session
from vtp_cli.batch_view import batch_table, summary, watch
from vtp_cli.commands.deploy import resolve
from vtp_cli.commands.predict import IMAGE_SUFFIXES
from vtp_cli.errors import ExitCode
from vtp_cli.kv import is_pair, parse_pairs
from vtp_cli.options import JsonOpt, LimitOpt
from vtp_cli.output import as_data, num, out, print_json, when
from vtp_cli.progress import byte_bar

batches_app = typer.Typer(
    name="batches", help="Batch inference jobs: list, show, watch, cancel, download results.", no_args_is_help=True
)
PARAMS = {"conf", "iou", "max_det", "classes", "imgsz"}
SOURCE_KEYS = {"snapshot", "split"}
DeploymentArg = Annotated[str, typer.Argument(help="Deployment id or name.")]
BatchArg = Annotated[uuid.UUID, typer.Argument(help="Batch id.")]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="jsonl (a row per image) or coco (detect only).")]
OutputOpt = Annotated[Path, typer.Option("--output", "-o", help="A file, or a folder for the server's name.")]


def register(app: typer.Typer) -> None:
    app.command("batch")(batch)
    app.add_typer(batches_app)


def parse_sources(sources: list[str]) -> tuple[Path | None, dict[str, Any], dict[str, Any]]:
    """(a zip or folder, or None for a snapshot; {snapshot_id, split}; predict parameters) from the arguments."""
    paths = [s for s in sources if not is_pair(s)]
    values = parse_pairs([s for s in sources if is_pair(s)], "SOURCE")
    unknown = sorted(set(values) - PARAMS - SOURCE_KEYS)
    if unknown:
        known = ", ".join(sorted(PARAMS | SOURCE_KEYS))
        raise typer.BadParameter(f"unknown parameter(s) {', '.join(unknown)}; use {known}", param_hint="'SOURCE'")
    snapshot = values.pop("snapshot", None)
    split = values.pop("split", None)
    if isinstance(values.get("classes"), int):
        values["classes"] = [values["classes"]]
    elif isinstance(values.get("classes"), str):
        values["classes"] = [int(c) for c in values["classes"].split(",") if c.strip()]
    if len(paths) + (snapshot is not None) != 1:
        raise typer.BadParameter("give one source: a zip of images, a folder, or snapshot=ID", param_hint="'SOURCE'")
    if paths:
        path = Path(paths[0])
        if not path.exists():
            raise typer.BadParameter(f"{path}: no such file or folder", param_hint="'SOURCE'")
        if split is not None:
            raise typer.BadParameter("split= goes with snapshot=ID", param_hint="'SOURCE'")
        return path, {}, values
    return None, {"snapshot_id": str(snapshot), "split": split}, values


def zip_images(folder: Path, target: Path) -> int:
    """The folder's images (sorted, recursive) in a zip, paths relative to it; how many."""
    found = sorted(
        p for p in folder.rglob("*") if p.is_file() and not p.is_symlink() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    if not found:
        raise typer.BadParameter(f"{folder}: no image found (jpg, png, bmp, webp, tif)", param_hint="'SOURCE'")
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as archive:  # images are compressed already
        for path in found:
            archive.write(path, path.relative_to(folder).as_posix())
    return len(found)


def download(client: Any, deployment_id: str, b: dict[str, Any], output: Path, fmt: str, quiet: bool) -> Path:
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


def batch(
    deployment: DeploymentArg,
    sources: Annotated[
        list[str],
        typer.Argument(
            metavar="SOURCES...",
            help="A zip of images, a folder (its images zipped on the fly), or snapshot=ID (with split=train|val|"
            "test|all); predict parameters as key=value: conf=0.25 iou=0.7 max_det=300 classes=0,2 imgsz=640.",
        ),
    ],
    follow: Annotated[
        bool, typer.Option("--watch/--no-watch", help="Watch the batch to its end, or return once it is queued.")
    ] = True,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Download the results here once it succeeded.")
    ] = None,
    fmt: FormatOpt = "jsonl",
    json_out: JsonOpt = False,
) -> None:
    """Predict many images in the background: upload a zip or a folder (or name a dataset snapshot), watch
    the progress live, and download the results (JSON Lines, or COCO for detect). Exit code 1 unless it succeeded.
    """
    path, snapshot, params = parse_sources(sources)
    with session.connect() as client, tempfile.TemporaryDirectory(prefix="vtp-batch-") as tmp:
        deployment_id = resolve(client, deployment)
        if path is None:
            created = client.batches.create(deployment_id, **snapshot, **params)
        else:
            archive = path
            if path.is_dir():
                archive = Path(tmp) / f"{path.resolve().name}.zip"
                count = zip_images(path, archive)
                if not json_out:
                    out.print(f"zipped {count} image(s) of {path}")
            with byte_bar(f"uploading {archive.name}", archive.stat().st_size, quiet=json_out) as bar:
                created = client.batches.create(deployment_id, archive, progress=bar, **params)
        b: dict[str, Any] = as_data(created)
        if not json_out:
            out.print(f"batch {b['id']} {summary(b)} on deployment {deployment_id}")
        if not follow:
            if json_out:
                print_json(b)
            else:
                out.print(f"watch: vtp batches watch {deployment_id} {b['id']}")
            return
        b, detached = watch(client, deployment_id, str(b["id"]), json_out)
        if detached:
            return
        finish(client, deployment_id, b, output, fmt, json_out)


@batches_app.command("ls")
def ls(
    deployment: DeploymentArg,
    status: Annotated[
        str | None, typer.Option("--status", help="queued, running, succeeded, failed or cancelled.")
    ] = None,
    limit: LimitOpt = 50,
    json_out: JsonOpt = False,
) -> None:
    """The deployment's batches, newest first."""
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
