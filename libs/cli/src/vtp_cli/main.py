"""Entry point of the `vtp` command."""

import typer

app = typer.Typer(name="vtp", no_args_is_help=True, help="The vision training platform's command line.")


@app.callback()
def main() -> None:
    """The vision training platform's command line."""


@app.command()
def version() -> None:
    """Print the CLI's version."""
    from importlib.metadata import version as dist_version

    typer.echo(dist_version("vtp-cli"))


def run() -> None:
    app()
