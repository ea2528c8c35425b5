"""`vtp deploy EXPORT` (prints the endpoint and a curl line) and `vtp deployments ls|show|rollback|stop|start|rm`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer
from rich.table import Table

from vtp_cli import session
from vtp_cli.errors import CliError, ExitCode
from vtp_cli.kv import parse_pairs
from vtp_cli.options import JsonOpt, LimitOpt, OffsetOpt
from vtp_cli.output import as_data, items, out, pairs, print_json, short, when

deployments_app = typer.Typer(
    name="deployments", help="Deployments: list, show, rollback, stop, start, remove.", no_args_is_help=True
)
DeploymentArg = Annotated[str, typer.Argument(help="Deployment id or name.")]


def register(app: typer.Typer) -> None:
    app.command("deploy")(deploy)
    app.add_typer(deployments_app)


def resolve(client: Any, ref: str) -> str:
    """A deployment's id from its id or its name (unique in the project)."""
    try:
        return str(uuid.UUID(ref))
    except ValueError:
        pass
    offset = 0
    while True:
        page = items(client.deployments.list(limit=200, offset=offset))
        for d in page:
            if d["name"] == ref:
                return str(d["id"])
        if len(page) < 200:
            raise CliError(f"no deployment named {ref!r} in this project", ExitCode.NOT_FOUND)
        offset += 200


def endpoint(url: str, deployment: dict[str, Any]) -> str:
    return f"{url}/api/v1/deployments/{deployment['id']}/predict"


def curl_line(url: str, deployment: dict[str, Any]) -> str:
    """A request anyone can paste (the token from the environment, never printed)."""
    return f'curl -H "Authorization: Bearer $VTP_TOKEN" -F file=@image.jpg {endpoint(url, deployment)}'


def print_deployment(url: str, d: dict[str, Any]) -> None:
    out.print(f"deployment {d['id']} {d['name']!r}: {d['status']}")
    out.print(f"serves     export {d['export_id']} (v{d.get('export_version')}), {d['task_type']}, {d['runtime']}")
    out.print(
        f"defaults   {pairs(d.get('defaults'))}; input {d.get('imgsz')} px; classes {len(d.get('classes') or {})}"
    )
    if d.get("previous_export"):
        out.print(f"rollback   to export {d['previous_export'].get('export_id')}")
    if d.get("error"):
        out.print(f"error      {d['error'].get('code')}: {d['error'].get('message')}", markup=False)
    if d["status"] == "ready":
        out.print(f"endpoint   {endpoint(url, d)}")
        out.print(f"try        {curl_line(url, d)}", markup=False)


def deploy(
    export_id: Annotated[uuid.UUID, typer.Argument(help="A succeeded export.")],
    thresholds: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="KEY=VALUE...",
            help="Default thresholds as key=value: conf=0.25 iou=0.7 max_det=300.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Unique name (default: from the export).")] = None,
    runtime: Annotated[str, typer.Option("--runtime", help="onnxruntime or openvino.")] = "onnxruntime",
    json_out: JsonOpt = False,
) -> None:
    """Serve an export; answers once it is ready and prints the endpoint and a ready-to-paste curl line."""
    values = parse_pairs(thresholds or [], "THRESHOLDS")
    unknown = sorted(set(values) - {"conf", "iou", "max_det"})
    if unknown:
        raise typer.BadParameter(f"unknown threshold(s) {', '.join(unknown)}", param_hint="'THRESHOLDS'")
    url, _ = session.credentials()
    with session.connect() as client:
        if name is None:
            source = as_data(client.exports.get(export_id))
            name = f"{source['format']}-{short(source['job_id'])}-{source['name']}"
        if not json_out:
            out.print(f"deploying export {export_id} as {name!r} ({runtime}) ...")
        d = as_data(client.deployments.create(export_id, name, runtime=runtime, **values))
    if json_out:
        print_json(d)
    else:
        print_deployment(url, d)
        if d["status"] == "ready":
            out.print(f"next: vtp predict {d['name']} image.jpg --save out/")
    if d["status"] != "ready":
        raise typer.Exit(ExitCode.FAILED)


@deployments_app.command("ls")
def ls(
    status: Annotated[str | None, typer.Option("--status", help="creating, ready, failed or stopped.")] = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """The project's deployments."""
    with session.connect() as client:
        page = client.deployments.list(status=status, limit=limit, offset=offset)
    if json_out:
        print_json(page)
        return
    table = Table("id", "name", "status", "export", "task", "runtime", "updated")
    for d in items(page):
        export = f"{short(d['export_id'])} v{d.get('export_version')}"
        table.add_row(str(d["id"]), d["name"], d["status"], export, d["task_type"], d["runtime"], when(d["updated_at"]))
    out.print(table)


def _one(ref: str, json_out: bool, action: str | None = None) -> None:
    url, _ = session.credentials()
    with session.connect() as client:
        deployment_id = resolve(client, ref)
        group = client.deployments
        d = as_data(getattr(group, action)(deployment_id) if action else group.get(deployment_id))
    if json_out:
        print_json(d)
        return
    print_deployment(url, d)


@deployments_app.command("show")
def show(deployment: DeploymentArg, json_out: JsonOpt = False) -> None:
    """One deployment: what it serves, its defaults, endpoint and curl line."""
    _one(deployment, json_out)


@deployments_app.command("rollback")
def rollback(deployment: DeploymentArg, json_out: JsonOpt = False) -> None:
    """Serve the export served before the last switch again."""
    _one(deployment, json_out, "rollback")


@deployments_app.command("stop")
def stop(deployment: DeploymentArg, json_out: JsonOpt = False) -> None:
    """Stop serving (the deployment stays; `start` serves again)."""
    _one(deployment, json_out, "deactivate")


@deployments_app.command("start")
def start(deployment: DeploymentArg, json_out: JsonOpt = False) -> None:
    """Serve a stopped deployment again."""
    _one(deployment, json_out, "activate")


@deployments_app.command("rm")
def rm(deployment: DeploymentArg, json_out: JsonOpt = False) -> None:
    """Delete the deployment (its model file too)."""
    with session.connect() as client:
        deployment_id = resolve(client, deployment)
        client.deployments.delete(deployment_id)
    if json_out:
        print_json({"id": deployment_id, "deleted": True})
        return
    out.print(f"deleted deployment {deployment_id}")
