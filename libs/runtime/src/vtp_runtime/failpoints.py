"""Named failpoints for crash tests: the process dies exactly where a test needs it to.

``VTP_FAILPOINTS=outbox.after_publish`` makes :func:`hit` kill the process with
exit code 137 (as SIGKILL would) the first time that point is reached. Unset in
production, so each call is a set lookup.
"""

from __future__ import annotations

import os

_ACTIVE = frozenset(filter(None, os.environ.get("VTP_FAILPOINTS", "").split(",")))


def active(name: str) -> bool:
    """Whether failpoint `name` is on in this process (for failpoints that are not a crash)."""
    return name in _ACTIVE


def hit(name: str) -> None:
    """Die on the spot if failpoint `name` is active."""
    if name in _ACTIVE:
        os._exit(137)
