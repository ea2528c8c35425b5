"""`vtp hooks add URL --events ...` and `vtp hooks ls|show|deliveries|redeliver|rm`: signed webhooks."""

from __future__ import annotations

import uuid
from typing import Annotated

import typer
from rich.table import Table

from vtp_cli import session
from vtp_cli.options import JsonOpt, LimitOpt, OffsetOpt
from vtp_cli.output import as_data, items, out, print_json, short, when

hooks_app = typer.Typer(
    name="hooks", help="Webhooks: subscribe a URL to events, list, deliveries, redeliver.", no_args_is_help=True
)
SubArg = Annotated[uuid.UUID, typer.Argument(help="Subscription id.")]


def register(app: typer.Typer) -> None:
    app.add_typer(hooks_app)


@hooks_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="The http(s) URL events are posted to.")],
    events: Annotated[
        list[str] | None,
        typer.Option(
            "--events", "-e", help="Topics, e.g. job.lifecycle.v1 (repeat or comma-separate; none: every topic)."
        ),
    ] = None,
    jobs: Annotated[list[uuid.UUID] | None, typer.Option("--job", help="Only these jobs' events (repeat).")] = None,
    description: Annotated[str | None, typer.Option("--description", help="What it is for.")] = None,
    json_out: JsonOpt = False,
) -> None:
    """Subscribe a URL to platform events; prints the signing secret (shown only once)."""
    topics = [t.strip() for value in events or [] for t in value.split(",") if t.strip()]
    with session.connect() as client:
        created = as_data(
            client.subscriptions.create(url, event_types=topics, job_ids=jobs or [], description=description)
        )
    if json_out:
        print_json(created)
        return
    out.print(f"subscription {created['id']}: {url} <- {', '.join(created['event_types']) or 'every topic'}")
    out.print(f"signing secret (shown once): {created['secret']}", markup=False)
    out.print("verify each delivery's webhook-signature header with it (Standard Webhooks)")


@hooks_app.command("ls")
def ls(limit: LimitOpt = 50, offset: OffsetOpt = 0, json_out: JsonOpt = False) -> None:
    """The project's webhook subscriptions."""
    with session.connect() as client:
        page = client.subscriptions.list(limit=limit, offset=offset)
    if json_out:
        print_json(page)
        return
    table = Table("id", "url", "events", "active", "failures", "created")
    for s in items(page):
        active = "yes" if s["active"] else f"no ({s.get('disabled_reason') or 'disabled'})"
        events = ", ".join(s["event_types"]) or "all"
        table.add_row(str(s["id"]), s["url"], events, active, str(s["consecutive_failures"]), when(s["created_at"]))
    out.print(table)


@hooks_app.command("show")
def show(subscription_id: SubArg, json_out: JsonOpt = False) -> None:
    """One subscription."""
    with session.connect() as client:
        found = client.subscriptions.get(subscription_id)
    if json_out:
        print_json(found)
        return
    s = as_data(found)
    out.print(f"subscription {s['id']}: {s['url']}, active {s['active']}, events {s['event_types'] or 'all'}")


@hooks_app.command("deliveries")
def deliveries(
    subscription_id: SubArg,
    status: Annotated[
        str | None, typer.Option("--status", help="pending, delivering, succeeded, dead or cancelled.")
    ] = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    json_out: JsonOpt = False,
) -> None:
    """The subscription's delivery log, newest first."""
    with session.connect() as client:
        page = client.subscriptions.deliveries(subscription_id, status=status, limit=limit, offset=offset)
    if json_out:
        print_json(page)
        return
    table = Table("delivery", "topic", "event", "status", "tries", "last answer", "created")
    for d in items(page):
        answer = str(d.get("last_status_code") or d.get("last_error") or "-")
        table.add_row(
            str(d["id"]),
            d["topic"],
            short(d["event_id"]),
            d["status"],
            str(d["attempt_count"]),
            answer,
            when(d["created_at"]),
        )
    out.print(table)


@hooks_app.command("redeliver")
def redeliver(
    subscription_id: SubArg,
    delivery_id: Annotated[uuid.UUID, typer.Argument(help="Delivery id (from `vtp hooks deliveries`).")],
    json_out: JsonOpt = False,
) -> None:
    """Deliver the same event again, with fresh tries."""
    with session.connect() as client:
        again = as_data(client.subscriptions.redeliver(subscription_id, delivery_id))
    if json_out:
        print_json(again)
        return
    out.print(f"redelivery {again['id']} of {delivery_id} queued ({again['status']})")


@hooks_app.command("rm")
def rm(subscription_id: SubArg, json_out: JsonOpt = False) -> None:
    """Delete the subscription (deliveries not yet made are cancelled)."""
    with session.connect() as client:
        client.subscriptions.delete(subscription_id)
    if json_out:
        print_json({"id": str(subscription_id), "deleted": True})
        return
    out.print(f"deleted subscription {subscription_id}")
