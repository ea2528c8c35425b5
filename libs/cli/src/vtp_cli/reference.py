"""`python -m vtp_cli.reference [FILE]`: the CLI reference (docs/cli.md) generated from the command tree.

Each command's usage, help, arguments and options come from the same Typer/click objects that parse
the command line, so the page cannot drift from the code (a unit test compares it with docs/cli.md).
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer
from typer import _click
from typer.core import TyperArgument, TyperGroup, TyperOption

from vtp_cli.main import app

HEADER = """# `vtp` command line reference

Generated from the commands by `python -m vtp_cli.reference docs/cli.md`; a unit test fails when
this page and the code disagree. Start with `vtp login URL --token TOKEN` (the local stack's URL and
admin token are shown by `make status`).

Every command takes `--json` (the raw resource JSON on stdout, for scripts) and `--help`.
`VTP_URL` and `VTP_TOKEN` override the saved login. Exit codes: 0 ok, 1 a failed job or request,
2 a usage error, 3 not found, 4 authentication (401/403). Errors are one line on stderr plus the
problem list (file, pointer, code, message).
"""


def walk(command: Any, ctx: Any) -> Iterator[tuple[Any, Any]]:
    """Every command under `command`, depth first, in the order they were registered."""
    yield command, ctx
    if isinstance(command, TyperGroup):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, _click.Context(sub, info_name=name, parent=ctx))


def _default(param: Any) -> str:
    value = param.default
    if value is None or value is False or value == [] or callable(value) or not param.show_default:
        return ""
    text = str(value) if not isinstance(value, bool) else "true"
    return f"`{text}`"


def _cell(text: str | None) -> str:
    return " ".join((text or "").split()).replace("|", "\\|")


def _argument_name(param: Any) -> str:
    return str(param.metavar or (param.name or "").upper())


def usage(command: Any, arguments: list[Any]) -> str:
    """`[OPTIONS] JOB_ID [KEY=VALUE...]`: options first, then each argument (optional ones in brackets)."""
    pieces = ["[OPTIONS]"]
    for p in arguments:
        name = _argument_name(p)
        if p.nargs == -1 and not name.endswith("..."):
            name += "..."
        pieces.append(name if p.required else f"[{name}]")
    if isinstance(command, TyperGroup):
        pieces.append("COMMAND [ARGS]...")
    return " ".join(pieces)


def render_command(command: Any, ctx: Any) -> str:
    path = ctx.command_path
    lines = [f"## `{path}`", ""]
    arguments = [p for p in command.params if isinstance(p, TyperArgument)]
    options = [p for p in command.params if isinstance(p, TyperOption) and not p.hidden]
    lines += [f"    {path} {usage(command, arguments)}".rstrip(), ""]
    if command.help:
        lines += [inspect.cleandoc(command.help).split("\f")[0].strip(), ""]
    if arguments:
        lines += ["| argument | required | description |", "|---|---|---|"]
        for a in arguments:
            lines.append(
                f"| `{_argument_name(a)}` | {'yes' if a.required else 'no'} | {_cell(getattr(a, 'help', ''))} |"
            )
        lines.append("")
    if options:
        lines += ["| option | description | default |", "|---|---|---|"]
        for o in options:
            names = ", ".join(f"`{name}`" for name in [*o.opts, *o.secondary_opts])
            lines.append(f"| {names} | {_cell(o.help)} | {_default(o)} |")
        lines.append("")
    if isinstance(command, TyperGroup):
        subs = [s for s in command.list_commands(ctx) if not command.get_command(ctx, s).hidden]  # type: ignore[union-attr]
        lines += ["Commands: " + ", ".join(f"`{s}`" for s in subs), ""]
    return "\n".join(lines)


def generate() -> str:
    """The whole reference page."""
    root = typer.main.get_command(app)
    ctx = _click.Context(root, info_name="vtp")
    sections = [render_command(command, sub_ctx) for command, sub_ctx in walk(root, ctx)]
    return HEADER + "\n" + "\n".join(sections).rstrip() + "\n"


def main(argv: list[str]) -> int:
    text = generate()
    if argv:
        Path(argv[0]).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
