"""`vtp train data=ID model=yolo11n epochs=50 imgsz=640 ...`: submit a job and follow it live."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer

from vtp_cli import session
from vtp_cli.errors import ExitCode
from vtp_cli.follow import Follower
from vtp_cli.kv import parse_pairs
from vtp_cli.options import JsonOpt
from vtp_cli.output import as_data, out, print_json
from vtp_cli.render import job_table
from vtp_client.errors import ApiError

# Keys that describe the job rather than its training config.
JOB_KEYS = ("data", "model", "task", "name", "snapshot", "framework", "priority")
_TASK_SUFFIXES = (("-seg", "segment"), ("-pose", "pose"), ("-cls", "classify"))


def register(app: typer.Typer) -> None:
    app.command()(train)


def task_of(model: str) -> str:
    """The task a model name implies, as Ultralytics names them: yolo11n-seg is segment, yolo11n detect."""
    stem = model.lower().removesuffix(".pt").removesuffix(".yaml")
    return next((task for suffix, task in _TASK_SUFFIXES if stem.endswith(suffix)), "detect")


def _is_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def split_config(
    values: dict[str, Any], schema: dict[str, Any], preset: dict[str, Any] | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(config, advanced_config): keys the basic schema names go to config, advanced ones to advanced_config,
    unknown keys to config (the server then names them); a preset's values first, the arguments win."""
    basic = set((schema.get("basic") or {}).get("properties", {}))
    advanced = set((schema.get("advanced") or {}).get("properties", {}))
    config = dict((preset or {}).get("config", {}))
    advanced_config = dict((preset or {}).get("advanced_config", {}))
    for key, value in values.items():
        if key in advanced and key not in basic:
            advanced_config[key] = value
        else:
            config[key] = value
    return config, advanced_config


def build_request(client: Any, values: dict[str, Any], preset_name: str | None, name: str | None) -> dict[str, Any]:
    """The job request from key=value arguments; usage errors for what is missing here."""
    job = {k: values.pop(k) for k in JOB_KEYS if k in values}
    if "data" not in job:
        raise typer.BadParameter("data=DATASET_ID is required", param_hint="'ARGS'")
    data = str(job["data"])
    if not _is_id(data):
        raise typer.BadParameter(f"data={data} is not a dataset id", param_hint="'ARGS'")
    model = str(job.get("model", "yolo11n"))
    framework = str(job.get("framework", "ultralytics"))
    schema = client.trainers.config_schema(framework)
    preset = None
    if preset_name:
        presets = schema.get("presets") or {}
        if preset_name not in presets:
            raise typer.BadParameter(
                f"unknown preset {preset_name!r}; one of {', '.join(presets)}", param_hint="'--preset'"
            )
        preset = presets[preset_name]
    if "task" in job:
        task = str(job["task"])
    elif _is_id(model):  # fine-tuning an earlier job: its task
        task = as_data(client.jobs.get(model))["task_type"]
    else:
        task = task_of(model)
    config, advanced = split_config(values, schema, preset)
    request: dict[str, Any] = {
        "dataset_id": data,
        "name": name or str(job.get("name") or f"{model} on {data[:8]}"),
        "task_type": task,
        "model": model,
        "config": config,
        "advanced_config": advanced,
        "framework": framework,
        "priority": job.get("priority", 0),
    }
    if "snapshot" in job:
        request["snapshot_id"] = str(job["snapshot"])
    return request


def finish(client: Any, job_id: str, follow: bool, json_out: bool) -> None:
    """Follow a job to its end (or until the user detaches), print the result, exit 1 unless it completed."""
    if follow:
        outcome = Follower(client, job_id, quiet=json_out).run()
        job, detached = outcome.job, outcome.detached
    else:
        job, detached = as_data(client.jobs.get(job_id)), True
    if json_out:
        print_json(job)
    else:
        out.print(job_table(job))
        if job["status"] == "completed":
            out.print(f"next: vtp export {job_id} --format onnx")
    if not detached and job["status"] != "completed":
        raise typer.Exit(ExitCode.FAILED)


def train(
    args: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="KEY=VALUE...",
            help="Settings: data=DATASET_ID (required), model=yolo11n, task=detect, snapshot=ID, "
            "epochs=50, imgsz=640, batch=16, ... (any basic or advanced config key; the server checks them).",
            show_default=False,
        ),
    ] = None,
    preset: Annotated[
        str | None, typer.Option("--preset", help="Start from a preset (easy, medium, advanced); arguments win.")
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Job name (default: model on dataset).")] = None,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Follow the job live, or return once it is submitted.")
    ] = True,
    json_out: JsonOpt = False,
) -> None:
    """Train a model, Ultralytics style: `vtp train data=ID model=yolo11n epochs=50 imgsz=640`.

    Follows the job live (epochs with losses and mAP, ETA) and prints the result; Ctrl-C asks
    whether to cancel the job or only stop watching. Exit code 1 when the job fails.
    """
    values = parse_pairs(args or [], "ARGS")
    with session.connect() as client:
        request = build_request(client, values, preset, name)
        try:
            job = as_data(client.jobs.create(request.pop("dataset_id"), **request))
        except ApiError as exc:
            if exc.status == 422:
                exc.title = "The training request is not valid"
            raise
        if not json_out:
            epochs = (job.get("config") or {}).get("epochs", "?")
            out.print(f"job {job['id']} queued: {job['model']} ({job['task_type']}), {epochs} epochs")
            if follow:
                out.print("following live; Ctrl-C to cancel the job or stop watching")
        if not follow and json_out:
            print_json(job)
            return
        finish(client, str(job["id"]), follow, json_out)
