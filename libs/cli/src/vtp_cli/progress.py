"""Byte progress bars for uploads and downloads (on stderr, so `--json` output stays clean)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from vtp_cli.output import err

Report = Callable[[int, int | None], None]


@contextmanager
def byte_bar(label: str, total: int | None = None, quiet: bool = False) -> Iterator[Report]:
    """A bar that a client's `progress(done, total)` callback moves; nothing drawn when quiet."""
    if quiet:
        yield lambda done, total: None
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err, transient=False) as bar:
        task = bar.add_task(label, total=total)

        def update(done: int, size: int | None) -> None:
            bar.update(task, completed=done, total=size if size is not None else total)

        yield update
