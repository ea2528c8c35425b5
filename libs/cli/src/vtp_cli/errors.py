"""Exit codes, and every expected failure turned into one readable line plus the problem list.

0 ok, 1 a failed job or request, 2 a usage error, 3 not found, 4 authentication (401/403).
Unexpected exceptions are bugs and keep their traceback.
"""

from __future__ import annotations

import json
from enum import IntEnum
from typing import Any

from rich.markup import escape
from rich.table import Table

from vtp_cli.output import as_data, duration, err
from vtp_client.errors import ApiError, ConnectionFailed, VtpError


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    AUTH = 4


class CliError(Exception):
    """A failure the CLI itself found (no config, a missing file, a failed job); printed like an API error."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED, hint: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.hint = hint


def exit_code(error: BaseException) -> ExitCode:
    """The exit code of an expected failure."""
    if isinstance(error, CliError):
        return error.code
    if isinstance(error, ApiError):
        if error.status in (401, 403):
            return ExitCode.AUTH
        if error.status == 404:
            return ExitCode.NOT_FOUND
    return ExitCode.FAILED


def problems_table(problems: list[Any], title: str | None = None) -> Table:
    """Problems as rows (file, pointer, code, message); the file column only when some problem names a file."""
    rows = [as_data(p) for p in problems]
    has_file = any(r.get("file") for r in rows)
    table = Table(title=title, title_justify="left", show_lines=False, expand=False)
    if has_file:
        table.add_column("file", overflow="fold")
    table.add_column("pointer", overflow="fold")
    table.add_column("code", no_wrap=True)
    table.add_column("message", overflow="fold")
    for r in rows:
        file = str(r.get("file") or "") + (f":{r['line']}" if r.get("line") is not None else "")
        pointer = str(r.get("pointer") or r.get("field") or "")
        cells = [pointer, str(r.get("code") or ""), str(r.get("message") or "")]
        table.add_row(*([file] if has_file else []), *cells)
    return table


def headline(error: BaseException) -> str:
    """The one line that says what went wrong."""
    if isinstance(error, ApiError):
        text = error.title + (f": {error.detail}" if error.detail and error.detail != error.title else "")
        return f"{text} ({error.code}, HTTP {error.status})"
    return str(error)


def _hint(error: BaseException) -> str | None:
    if isinstance(error, CliError):
        return error.hint
    if isinstance(error, ApiError):
        if error.status in (401, 403) and getattr(error, "close_code", None) is None:
            return "check the token: `vtp whoami`, or log in again with `vtp login URL --token ...`"
        if error.code == "task_required":  # a download of a snapshot with several tasks
            return "choose one with --task"
        if error.status == 429:
            wait = error.retry_after
            return f"rate limited; retry after {duration(wait)}" if wait is not None else "rate limited; retry later"
    return None


def report(error: BaseException, as_json: bool = False) -> ExitCode:
    """Print the failure (stderr; with `--json` the problem document also goes to stdout) and give its exit code."""
    if as_json and isinstance(error, ApiError):
        body = error.body or {"status": error.status, "code": error.code, "title": error.title}
        print(json.dumps(as_data(body), indent=2, default=str))
    err.print("[bold red]error:[/] " + escape(headline(error)))
    problems = list(getattr(error, "problems", []) or [])
    if problems:
        err.print(problems_table(problems))
    hint = _hint(error)
    if hint:
        err.print(f"hint: {hint}", markup=False)
    return exit_code(error)


EXPECTED: tuple[type[BaseException], ...] = (VtpError, CliError, ConnectionFailed)
