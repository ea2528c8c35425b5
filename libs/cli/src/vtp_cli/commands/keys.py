"""`vtp keys create|ls|revoke`: API keys that call a deployment's predict route (never management routes)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer
from rich.table import Table

from vtp_cli import session
from vtp_cli.commands.deploy import endpoint, resolve
from vtp_cli.options import JsonOpt, LimitOpt, OffsetOpt
from vtp_cli.output import as_data, items, out, print_json, when

keys_app = typer.Typer(name="keys", help="Deployment API keys: create, list, revoke.", no_args_is_help=True)
LIMITS = ("per_second", "per_minute", "concurrent", "images_per_day", "images_per_month")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app)


def _limit(help_text: str) -> Any:
    return typer.Option(min=1, help=help_text, show_default=False)


@keys_app.command("create")
def create(
    deployment: Annotated[str, typer.Argument(help="Deployment id or name the key may call.")],
    name: Annotated[str, typer.Option("--name", help="What the key is for (shown in lists).")],
    scopes: Annotated[
        list[str] | None, typer.Option("--scope", help="predict (default), usage:read; repeat for several.")
    ] = None,
    days: Annotated[int | None, typer.Option("--days", min=1, help="Expire after this many days.")] = None,
    per_second: Annotated[int | None, _limit("Requests per second.")] = None,
    per_minute: Annotated[int | None, _limit("Requests per minute.")] = None,
    concurrent: Annotated[int | None, _limit("Requests in flight at once.")] = None,
    images_per_day: Annotated[int | None, _limit("Images per UTC day.")] = None,
    images_per_month: Annotated[int | None, _limit("Images per UTC month.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Create a key of one deployment; its secret (`vtpk_...`) is printed once, with a curl line using it."""
    given = dict(zip(LIMITS, (per_second, per_minute, concurrent, images_per_day, images_per_month), strict=True))
    limits = {k: v for k, v in given.items() if v is not None}
    expires = datetime.now(UTC) + timedelta(days=days) if days else None
    url, _ = session.credentials()
    with session.connect() as client:
        deployment_id = resolve(client, deployment)
        created = as_data(
            client.keys.create(
                name,
                deployment_id=deployment_id,
                scopes=tuple(scopes or ["predict"]),
                expires_at=expires,
                limits=limits or None,
            )
        )
    if json_out:
        print_json(created)
        return
    out.print(
        f"key {created['id']} ({created['prefix']}...) for deployment {deployment_id}: {', '.join(created['scopes'])}"
    )
    out.print(f"secret (shown once): {created['secret']}", markup=False)
    line = (
        f'curl -H "Authorization: Bearer {created["secret"]}" -F file=@image.jpg {endpoint(url, {"id": deployment_id})}'
    )
    out.print(f"try: {line}", markup=False)


@keys_app.command("ls")
def ls(
    deployment: Annotated[
        str | None, typer.Argument(help="Only keys that reach this deployment (id or name).", show_default=False)
    ] = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """The project's API keys (newest first), or those of one deployment."""
    with session.connect() as client:
        deployment_id = resolve(client, deployment) if deployment else None
        page = client.keys.list(deployment_id=deployment_id, limit=limit, offset=offset)
    if json_out:
        print_json(page)
        return
    table = Table("id", "name", "prefix", "status", "scopes", "deployments", "last used", "expires")
    for k in items(page):
        reach = "all" if k.get("deployments") is None else ", ".join(str(d)[:8] for d in k["deployments"])
        table.add_row(
            str(k["id"]), k["name"], k["prefix"], k["status"], ", ".join(k["scopes"]), reach,
            when(k.get("last_used_at")), when(k.get("expires_at")),
        )  # fmt: skip
    out.print(table)


@keys_app.command("revoke")
def revoke(key_id: Annotated[uuid.UUID, typer.Argument(help="Key id.")], json_out: JsonOpt = False) -> None:
    """Revoke a key: every replica refuses it within a second."""
    with session.connect() as client:
        client.keys.revoke(key_id)
    if json_out:
        print_json({"id": str(key_id), "revoked": True})
        return
    out.print(f"revoked key {key_id}")
