"""Is a failure the infrastructure's (retry as long as it takes) or the event's (dead-letter it)?

A consumer must not dead-letter events while PostgreSQL, Redis or Kafka is away: that is
an outage, and every event would be "poison". Only a failure that is not transient counts
towards an event's tries.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import redis.exceptions as redis_errors
import sqlalchemy.exc as sa_errors

from vtp_runtime.messaging.kafka import PublishError

_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    OSError,  # ConnectionError, ConnectionRefusedError, socket errors
    TimeoutError,
    sa_errors.OperationalError,
    sa_errors.InterfaceError,
    sa_errors.DisconnectionError,
    sa_errors.TimeoutError,  # connection pool exhausted
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    httpx.TransportError,
    PublishError,
)
# SQLSTATE classes: 08 connection exception, 40 transaction rollback (serialization failure,
# deadlock), 53 insufficient resources, 57 operator intervention (shutdown, cannot connect now).
_TRANSIENT_SQLSTATE_CLASSES = frozenset({"08", "40", "53", "57"})


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)  # SQLAlchemy's wrapped DBAPI error
        todo += [current.__cause__, orig if isinstance(orig, BaseException) else None]


def is_transient(exc: BaseException) -> bool:
    """True when `exc` (or anything in its cause chain) says a dependency is unavailable."""
    for err in _chain(exc):
        if isinstance(err, _TRANSIENT_TYPES):
            return True
        if isinstance(err, sa_errors.DBAPIError) and err.connection_invalidated:
            return True
        sqlstate = getattr(err, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _TRANSIENT_SQLSTATE_CLASSES:
            return True
    return False
