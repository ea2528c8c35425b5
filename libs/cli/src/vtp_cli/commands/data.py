"""`vtp data`: upload, list, inspect, snapshot, split and download datasets."""

from __future__ import annotations

import tempfile
import uuid
import zipfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from vtp_cli import session
from vtp_cli.errors import CliError, ExitCode
from vtp_cli.options import JsonOpt, LimitOpt, OffsetOpt
from vtp_cli.output import as_data, counts, items, out, print_json, short, size, when
from vtp_cli.progress import byte_bar

data_app = typer.Typer(
    name="data", help="Datasets: upload, list, inspect, snapshot, split, download.", no_args_is_help=True
)


# Datasets name tasks by annotation file (detection, ...); jobs by model (detect, ...). Both are accepted.
TASK_NAMES = {"detect": "detection", "segment": "segmentation", "classify": "classification"}


def dataset_task(task: str | None) -> str | None:
    return TASK_NAMES.get(task, task) if task else None


def register(app: typer.Typer) -> None:
    app.add_typer(data_app)


def zip_folder(folder: Path, target: Path) -> Path:
    """The folder's files in a zip, paths relative to it (what the platform expects of an upload)."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.is_symlink():  # the platform refuses links; skip rather than fail
                # Images are already compressed: storing them saves CPU on both ends.
                kind = zipfile.ZIP_STORED if path.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"} else None
                archive.write(path, path.relative_to(folder).as_posix(), compress_type=kind)
    return target


def task_rows(dataset: dict[str, Any]) -> Table:
    table = Table("task", "images", "annotations", "classes", title="Content", title_justify="left")
    for task, summary in sorted(dataset.get("tasks", {}).items()):
        classes = ", ".join(f"{c['name']} {c.get('annotation_count', '')}".strip() for c in summary.get("classes", []))
        table.add_row(task, str(summary.get("image_count", "-")), str(summary.get("annotation_count", "-")), classes)
    return table


def print_dataset(dataset: dict[str, Any]) -> None:
    out.print(f"dataset  {dataset['id']}  {dataset['name']!r}  (version {dataset['head_version']})")
    out.print(
        f"images   {dataset['image_count']}, {size(dataset['size_bytes'])}; split {counts(dataset.get('split_counts'))}"
    )
    out.print(f"content  sha256 {dataset['content_hash']}")
    if dataset.get("tasks"):
        out.print(task_rows(dataset))


@data_app.command("upload")
def upload(
    path: Annotated[Path, typer.Argument(exists=True, help="A DICE, YOLO or COCO zip, or a folder (zipped first).")],
    name: Annotated[str | None, typer.Option("--name", help="Dataset name (default: the file or folder name).")] = None,
    description: Annotated[str | None, typer.Option("--description", help="A description.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="auto, dice, yolo or coco.")] = "auto",
    json_out: JsonOpt = False,
) -> None:
    """Upload a dataset with a byte progress bar; problems come back as one table (file, pointer, code, message)."""
    label = name or path.stem or path.resolve().name
    with tempfile.TemporaryDirectory(prefix="vtp-upload-") as tmp:
        archive = zip_folder(path, Path(tmp) / f"{path.resolve().name}.zip") if path.is_dir() else path
        with (
            session.connect() as client,
            byte_bar(f"uploading {archive.name}", archive.stat().st_size, quiet=json_out) as bar,
        ):
            dataset = client.datasets.upload(archive, label, description=description, format=fmt, progress=bar)
    if json_out:
        print_json(dataset)
        return
    data = as_data(dataset)
    print_dataset(data)
    out.print(f"next: vtp data snapshot {data['id']}   or   vtp train data={data['id']} model=yolo11n epochs=10")


@data_app.command("ls")
def ls(
    search: Annotated[str | None, typer.Option("--search", help="Part of the name.")] = None,
    task: Annotated[
        str | None, typer.Option("--task", help="detection (detect), segmentation, classification, pose.")
    ] = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """The project's datasets."""
    with session.connect() as client:
        page = client.datasets.list(task_type=dataset_task(task), search=search, limit=limit, offset=offset)
    if json_out:
        print_json(page)
        return
    table = Table("id", "name", "version", "images", "size", "tasks", "updated")
    for d in items(page):
        tasks = ", ".join(sorted(d.get("tasks", {})))
        table.add_row(
            str(d["id"]),
            d["name"],
            str(d["head_version"]),
            str(d["image_count"]),
            size(d["size_bytes"]),
            tasks,
            when(d.get("updated_at")),
        )
    out.print(table)


@data_app.command("show")
def show(dataset_id: Annotated[uuid.UUID, typer.Argument(help="Dataset id.")], json_out: JsonOpt = False) -> None:
    """One dataset: content, classes, split and snapshots."""
    with session.connect() as client:
        dataset = as_data(client.datasets.get(dataset_id))
        snapshots = [as_data(s) for s in client.datasets.snapshots(dataset_id)]
    if json_out:
        print_json({**dataset, "snapshots": snapshots})
        return
    print_dataset(dataset)
    table = Table("snapshot", "tag", "version", "images", "split", "created", title="Snapshots", title_justify="left")
    for s in snapshots:
        table.add_row(
            str(s["id"]),
            s["version_tag"],
            str(s["dataset_version"]),
            str(s["image_count"]),
            short(s.get("split_fingerprint"), 12),
            when(s.get("created_at")),
        )
    out.print(table if snapshots else "no snapshots yet: vtp data snapshot " + str(dataset["id"]))


@data_app.command("snapshot")
def snapshot(
    dataset_id: Annotated[uuid.UUID, typer.Argument(help="Dataset id.")],
    tag: Annotated[str | None, typer.Option("--tag", help="Version tag (default v1, v2, ...).")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Freeze the dataset's head version and split (the same content again gives the existing snapshot)."""
    with session.connect() as client:
        snap = client.datasets.snapshot(dataset_id, tag)
    if json_out:
        print_json(snap)
        return
    s = as_data(snap)
    out.print(f"snapshot {s['version_tag']} {s['id']}: version {s['dataset_version']}, {s['image_count']} images")


@data_app.command("split")
def split(
    dataset_id: Annotated[uuid.UUID, typer.Argument(help="Dataset id.")],
    method: Annotated[str | None, typer.Option("--method", help="auto, manual or partial.")] = None,
    train: Annotated[float | None, typer.Option("--train", help="Share of images for training.")] = None,
    val: Annotated[float | None, typer.Option("--val", help="Share for validation.")] = None,
    test: Annotated[float | None, typer.Option("--test", help="Share for testing.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the random assignment.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Show the dataset's split, or change it with any of the options (the others keep their values)."""
    changes = {
        k: v for k, v in dict(method=method, train=train, val=val, test=test, seed=seed).items() if v is not None
    }
    with session.connect() as client:
        current = as_data(client.datasets.split(dataset_id))
        if changes:
            wanted = {k: current[k] for k in ("method", "train", "val", "test", "seed")} | changes
            current = as_data(client.datasets.set_split(dataset_id, assignments=current.get("assignments"), **wanted))
    if json_out:
        print_json(current)
        return
    out.print(
        f"split {current['method']}: train {current['train']:g} / val {current['val']:g} / test {current['test']:g}"
        f", seed {current['seed']}; images {counts(current.get('counts'))}"
    )


def _pick_snapshot(client: Any, dataset_id: uuid.UUID, wanted: str | None) -> dict[str, Any]:
    snapshots = [as_data(s) for s in client.datasets.snapshots(dataset_id)]
    if wanted is None:
        if not snapshots:
            raise CliError(
                f"dataset {dataset_id} has no snapshot", ExitCode.NOT_FOUND, f"vtp data snapshot {dataset_id}"
            )
        return dict(max(snapshots, key=lambda s: str(s["created_at"])))
    for s in snapshots:
        if wanted in (str(s["id"]), s["version_tag"]):
            return dict(s)
    raise CliError(f"dataset {dataset_id} has no snapshot {wanted!r}", ExitCode.NOT_FOUND)


@data_app.command("download")
def download(
    dataset_id: Annotated[uuid.UUID, typer.Argument(help="Dataset id.")],
    snapshot_ref: Annotated[
        str | None, typer.Option("--snapshot", help="Snapshot id or tag (default: the newest).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="dice, yolo or coco.")] = "dice",
    task: Annotated[
        str | None,
        typer.Option(
            "--task",
            help="For yolo and coco: detection (or detect), segmentation, ... (default: the snapshot's only task).",
        ),
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="A file, or a folder for the server's name.")] = Path(),
    json_out: JsonOpt = False,
) -> None:
    """Download a snapshot as a zip (DICE, YOLO or COCO)."""
    with session.connect() as client:
        snap = _pick_snapshot(client, dataset_id, snapshot_ref)
        with byte_bar(f"downloading {snap['version_tag']}", None, quiet=json_out) as bar:
            path = client.datasets.download(
                dataset_id, snap["id"], output, format=fmt, task=dataset_task(task), progress=bar
            )
    if json_out:
        print_json({"path": str(path), "snapshot": snap})
        return
    out.print(f"saved {path}")
