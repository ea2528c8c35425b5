"""Options many commands share."""

from __future__ import annotations

from typing import Annotated

import typer


class State:
    """What the current invocation asked for that the central error handler needs to know."""

    json = False


def _remember_json(value: bool) -> bool:
    if value:
        State.json = True
    return value


JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Print the raw resource JSON (for scripts).", callback=_remember_json),
]
LimitOpt = Annotated[int, typer.Option("--limit", "-n", min=1, max=200, help="How many to list.")]
OffsetOpt = Annotated[int, typer.Option("--offset", min=0, help="Skip this many (paging).")]
