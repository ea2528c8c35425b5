"""`vtp predict DEPLOYMENT image.jpg|folder [--save out/] [conf=.. iou=..]`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from vtp_cli import session
from vtp_cli.commands.deploy import resolve
from vtp_cli.draw import draw
from vtp_cli.kv import is_pair, parse_pairs
from vtp_cli.options import JsonOpt
from vtp_cli.output import as_data, out, print_json
from vtp_cli.render import detections_table

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}
BATCH = 8  # images per request (the service takes up to 16)
PARAMS = {"conf", "iou", "max_det", "classes", "imgsz"}


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)


def collect(sources: list[str]) -> tuple[list[Path], dict[str, Any]]:
    """Image files (folders searched, sorted) and key=value parameters, from the mixed arguments."""
    images: list[Path] = []
    pairs: list[str] = []
    for source in sources:
        path = Path(source)
        if path.is_dir():
            images += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            images.append(path)
        elif is_pair(source):
            pairs.append(source)
        else:
            raise typer.BadParameter(f"{source}: no such file or folder", param_hint="'SOURCES'")
    params = parse_pairs(pairs, "SOURCES")
    unknown = sorted(set(params) - PARAMS)
    if unknown:
        raise typer.BadParameter(f"unknown parameter(s) {', '.join(unknown)}; use {', '.join(sorted(PARAMS))}")
    if isinstance(params.get("classes"), int):
        params["classes"] = [params["classes"]]
    elif isinstance(params.get("classes"), str):
        params["classes"] = [int(c) for c in params["classes"].split(",") if c.strip()]
    if not images:
        raise typer.BadParameter("no image found (jpg, png, bmp, webp, tif)", param_hint="'SOURCES'")
    return images, params


def predict(
    deployment: Annotated[str, typer.Argument(help="Deployment id or name.")],
    sources: Annotated[
        list[str],
        typer.Argument(
            metavar="SOURCES...",
            help="Images or folders, and parameters as key=value: conf=0.25 iou=0.7 max_det=300 classes=0,2.",
        ),
    ],
    save: Annotated[
        Path | None, typer.Option("--save", help="Write each image with its predictions drawn into this folder.")
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Predict on images and print the detections; `--save out/` writes the images with boxes drawn."""
    images, params = collect(sources)
    answers: list[dict[str, Any]] = []
    with session.connect() as client:
        deployment_id = resolve(client, deployment)
        for start in range(0, len(images), BATCH):
            batch = images[start : start + BATCH]
            answer = as_data(client.deployments.predict(deployment_id, batch, **params))
            for path, result in zip(batch, answer["images"], strict=True):
                result["file"] = str(path)
                result["index"] = start + int(result.get("index", 0))
            answers.append(answer)
    results = [r for a in answers for r in a["images"]]
    saved: list[Path] = []
    if save is not None:
        for result in results:
            source = Path(result["file"])
            saved.append(draw(source, result, save / source.name))
    if json_out:
        print_json({**{k: v for k, v in answers[0].items() if k not in ("images", "total_ms")}, "images": results})
        return
    for result in results:
        out.print(detections_table(result["file"], result))
    head = answers[0]
    total = sum(a.get("total_ms", 0) for a in answers)
    out.print(f"{len(results)} image(s) by {head['name']} (export v{head.get('export_version')}) in {total:.0f} ms")
    if saved:
        out.print(
            f"saved {len(saved)} drawn image(s) to {save}: {', '.join(str(p) for p in saved[:3])}"
            + (" ..." if len(saved) > 3 else "")
        )
