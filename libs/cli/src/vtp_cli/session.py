"""Which gateway and token a command uses, and the client it talks through.

`VTP_URL` and `VTP_TOKEN` win over what `vtp login` saved (`vtp_client.config`). Tests replace
`connect` with a fake.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from vtp_cli.errors import CliError, ExitCode
from vtp_client.config import resolve


def credentials() -> tuple[str, str | None]:
    """(gateway URL, token): the environment first, then the saved login."""
    settings = resolve()
    return settings.url, settings.token


def _connect() -> Any:
    from vtp_client import Client  # imported late: `vtp --help` stays fast

    url, token = credentials()
    if not token:
        raise CliError(
            "no token: log in first",
            ExitCode.AUTH,
            hint="`vtp login URL --token TOKEN`, or set VTP_URL and VTP_TOKEN",
        )
    return Client(url, token)


connect: Callable[[], Any] = _connect
"""Make the client for a command (a fake in the unit tests)."""
