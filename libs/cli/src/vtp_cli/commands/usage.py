"""`vtp usage [DEPLOYMENT]`: requests, images, errors, latency and compute of a deployment or the project."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import typer
from rich.table import Table

from vtp_cli import session
from vtp_cli.commands.deploy import resolve
from vtp_cli.options import JsonOpt
from vtp_cli.output import as_data, num, out, print_json, size, when


def register(app: typer.Typer) -> None:
    app.command("usage")(usage)


def _row(label: str, figures: dict[str, Any]) -> list[str]:
    latency = figures.get("latency_ms") or {}
    errors = ", ".join(f"{k} {v}" for k, v in sorted((figures.get("errors_by_code") or {}).items()))
    return [
        label, str(figures.get("requests", 0)), str(figures.get("images", 0)),
        f"{figures.get('errors', 0)}" + (f" ({errors})" if errors else ""),
        num(latency.get("p50"), 1), num(latency.get("p95"), 1), num(latency.get("p99"), 1),
        num(figures.get("compute_seconds"), 2), size(figures.get("bytes_in")),
    ]  # fmt: skip


def usage(
    deployment: Annotated[
        str | None, typer.Argument(help="Deployment id or name (default: the whole project).", show_default=False)
    ] = None,
    granularity: Annotated[str | None, typer.Option("--granularity", help="minute, hour or day.")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Start, ISO 8601 (default: the server's).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="End, ISO 8601.")] = None,
    key: Annotated[uuid.UUID | None, typer.Option("--key", help="Only this API key's requests.")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="Print the series as CSV.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Usage per minute, hour or day: requests, images, errors by code, latency p50/p95/p99, compute, bytes in."""
    with session.connect() as client:
        deployment_id = resolve(client, deployment) if deployment else None
        if csv:
            typer.echo(
                client.usage.csv(deployment_id, start=start, end=end, granularity=granularity, key_id=key), nl=False
            )
            return
        if deployment_id:
            report = client.usage.deployment(deployment_id, start=start, end=end, granularity=granularity, key_id=key)
        else:
            report = client.usage.project(start=start, end=end, granularity=granularity, key_id=key)
    data = as_data(report)
    if json_out:
        print_json(report)
        return
    scope = f"deployment {deployment_id}" if deployment_id else "the project"
    title = f"usage of {scope}, {when(data.get('from'))} to {when(data.get('to'))}, per {data.get('granularity')}"
    table = Table(
        "", "requests", "images", "errors", "p50 ms", "p95 ms", "p99 ms", "compute s", "bytes in",
        title=title, title_justify="left",
    )  # fmt: skip
    for point in data.get("series") or []:
        if point.get("requests"):
            table.add_row(*_row(when(point.get("start")), point))
    table.add_row(*_row("total", data.get("total") or {}), style="bold")
    out.print(table)
    for part in data.get("by_key") or data.get("by_deployment") or []:
        label = part.get("key_id") or part.get("deployment_id") or "project token"
        out.print(f"  {label}: {part.get('requests', 0)} requests, {part.get('images', 0)} images")
