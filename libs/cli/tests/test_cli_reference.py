"""docs/cli.md is the reference generated from the command tree; regenerate it when a command changes."""

from __future__ import annotations

from pathlib import Path

from vtp_cli.reference import generate

DOC = Path(__file__).resolve().parents[3] / "docs" / "cli.md"


def test_docs_cli_md_is_the_generated_reference() -> None:
    assert DOC.read_text() == generate(), (
        "docs/cli.md is stale: run `.venv/bin/python -m vtp_cli.reference docs/cli.md`"
    )


def test_every_command_is_in_the_reference() -> None:
    text = generate()
    for command in ("vtp login", "vtp data upload", "vtp train", "vtp jobs logs", "vtp jobs metrics", "vtp export",
                    "vtp exports download", "vtp deploy", "vtp deployments rollback", "vtp predict", "vtp hooks add",
                    "vtp hooks redeliver"):  # fmt: skip
        assert f"## `{command}`" in text


def test_every_command_takes_json() -> None:
    import typer
    from typer import _click
    from typer.core import TyperGroup

    from vtp_cli.main import app
    from vtp_cli.reference import walk

    root = typer.main.get_command(app)
    leaves = [ctx.command_path for cmd, ctx in walk(root, _click.Context(root, info_name="vtp"))
              if not isinstance(cmd, TyperGroup) and not any("--json" in p.opts for p in cmd.params)]  # fmt: skip
    assert leaves == []
