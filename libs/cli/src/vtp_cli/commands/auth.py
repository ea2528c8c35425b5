"""`vtp login` and `vtp whoami`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from vtp_cli import session
from vtp_cli.options import JsonOpt
from vtp_cli.output import as_data, out, print_json
from vtp_client.config import save_config
from vtp_client.errors import ApiError


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(whoami)


def login(
    url: Annotated[str, typer.Argument(help="The gateway, e.g. http://127.0.0.1:8080.")],
    token: Annotated[
        str | None,
        typer.Option("--token", "-t", help="A project token (asked for, hidden, when left out).", show_default=False),
    ] = None,
    json_out: JsonOpt = False,
) -> None:
    """Check a token against the gateway and save both in the user config directory (mode 600)."""
    if not url.startswith(("http://", "https://")):
        raise typer.BadParameter("the gateway URL starts with http:// or https://", param_hint="'URL'")
    secret = token or typer.prompt("Token", hide_input=True)
    from vtp_client import Client

    with Client(url.rstrip("/"), secret) as client:  # refuse to save a token the gateway does not accept
        me = client.tokens.whoami()
    saved = save_config(url, secret)
    if json_out:
        print_json(me)
        return
    who = as_data(me)
    role = "admin" if who.get("is_admin") else "project"
    out.print(f"Logged in to {url.rstrip('/')}: {role} token {who['token_id']} of project {who['project_id']}")
    out.print(f"Saved to {saved} (mode 600). VTP_URL and VTP_TOKEN override it.")


def whoami(json_out: JsonOpt = False) -> None:
    """The gateway, project and token this CLI acts as."""
    url, _ = session.credentials()
    with session.connect() as client:
        me = as_data(client.tokens.whoami())
        project: dict[str, Any] = {}
        try:
            project = as_data(client.projects.get(me["project_id"]))
        except ApiError:  # no right to read it: the ids are enough
            project = {}
    if json_out:
        print_json({**me, "url": url, "project": project or None})
        return
    out.print(f"gateway  {url}")
    name = f"{project.get('name')} ({project.get('slug')})" if project else ""
    out.print(f"project  {me['project_id']} {name}".rstrip())
    out.print(f"token    {me['token_id']}{' (admin)' if me.get('is_admin') else ''}")
