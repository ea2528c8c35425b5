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


# A command waits out a short rate limit (a per-second bucket) but reports a long one (a quota) within
# seconds instead of sleeping on it; the client retries connection errors and 503s as usual.
MAX_RETRY_AFTER = 5.0


def _connect() -> Any:
    from vtp_client import Client, RetryPolicy  # imported late: `vtp --help` stays fast

    url, token = credentials()
    if not token:
        raise CliError(
            "no token: log in first",
            ExitCode.AUTH,
            hint="`vtp login URL --token TOKEN`, or set VTP_URL and VTP_TOKEN",
        )
    return Client(url, token, retry=RetryPolicy(max_retry_after=MAX_RETRY_AFTER))


connect: Callable[[], Any] = _connect
"""Make the client for a command (a fake in the unit tests)."""
