"""Entry point of the `vtp` command: the command tree, and expected failures mapped to exit codes centrally."""

from __future__ import annotations

from typing import Any

import typer
from typer import _click  # typer 0.29 carries its own click; its Context is the one commands get
from typer.core import TyperGroup

from vtp_cli.commands import auth, batch, data, deploy, export, hooks, jobs, keys, predict, train, usage
from vtp_cli.errors import EXPECTED, report
from vtp_cli.options import JsonOpt, State
from vtp_cli.output import print_json


class VtpGroup(TyperGroup):
    """The root group: an expected failure anywhere below becomes one readable error and its exit code."""

    def invoke(self, ctx: _click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except EXPECTED as exc:
            raise typer.Exit(report(exc, as_json=State.json)) from None


app = typer.Typer(
    name="vtp",
    cls=VtpGroup,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@app.callback()
def main() -> None:
    """The vision training platform's command line.

    Log in once with `vtp login URL --token TOKEN` (or set VTP_URL and VTP_TOKEN). Exit codes:
    0 ok, 1 a failed job or request, 2 a usage error, 3 not found, 4 authentication.
    """
    State.json = False


@app.command()
def version(json_out: JsonOpt = False) -> None:
    """Print the CLI's version."""
    from importlib.metadata import version as dist_version

    if json_out:
        print_json({"vtp-cli": dist_version("vtp-cli"), "vtp-client": dist_version("vtp-client")})
        return
    typer.echo(dist_version("vtp-cli"))


auth.register(app)
data.register(app)
train.register(app)
jobs.register(app)
export.register(app)
deploy.register(app)
keys.register(app)
usage.register(app)
predict.register(app)
batch.register(app)
hooks.register(app)


def run() -> None:
    app()
