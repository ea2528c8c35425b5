"""`vtp batch DEPLOYMENT zip|folder|snapshot=ID`: upload a zip or a folder (or name a snapshot), then watch it."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path
from typing import Annotated, Any

import typer

from vtp_cli import session
from vtp_cli.batch_view import summary, watch
from vtp_cli.commands.batches import DeploymentArg, FormatOpt, batches_app, finish
from vtp_cli.commands.deploy import resolve
from vtp_cli.commands.predict import IMAGE_SUFFIXES
from vtp_cli.kv import is_pair, parse_pairs
from vtp_cli.options import JsonOpt
from vtp_cli.output import as_data, out, print_json
from vtp_cli.progress import byte_bar

PARAMS = {"conf", "iou", "max_det", "classes", "imgsz"}
SOURCE_KEYS = {"snapshot", "split"}


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
