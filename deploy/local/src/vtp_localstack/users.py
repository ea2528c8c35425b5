"""Running a child process as another OS user (PostgreSQL refuses to run as root)."""

from __future__ import annotations

import pwd
from typing import Any


def as_user(user: str | None) -> dict[str, Any]:
    """subprocess arguments that drop to `user` fully: uid, its own group, no root groups.

    Dropping only the uid would keep gid 0, and a root-group-owned parent with
    mode 0701 would then deny access (the group bits apply, not the other bits).
    """
    if user is None:
        return {}
    entry = pwd.getpwnam(user)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
