"""A usage query's range, granularity and key filter, checked all at once."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from vtp_inference.domain.model import Problem, RequestRefused
from vtp_inference.domain.usage import GRANULARITIES, MAX_RANGE, Granularity, truncate

DEFAULT_SPAN = {Granularity.MINUTE: timedelta(hours=1), Granularity.HOUR: timedelta(days=1)}


@dataclass(frozen=True)
class UsageQuery:
    """Periods whose start is in [start, end), at `granularity`; `start` is on a period boundary."""

    start: datetime
    end: datetime
    granularity: Granularity
    key_id: uuid.UUID | None = None


def _moment(raw: str, name: str, found: list[Problem]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00") if raw.endswith("Z") else raw)
    except ValueError:
        found.append(Problem(f"/{name}", "invalid_parameter", f"{name} must be an ISO 8601 date or date-time"))
        return None
    if not 1970 <= moment.year <= 9000:  # also keeps offsets and default spans clear of datetime's limits
        found.append(Problem(f"/{name}", "invalid_parameter", f"{name} must be in the years 1970 to 9000"))
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # no offset: UTC


def parse_query(
    start: str | None, end: str | None, granularity: str | None, key_id: str | None, now: datetime
) -> UsageQuery:
    """The query, or RequestRefused naming every bad parameter. Defaults: hours of the last day, up to now."""
    found: list[Problem] = []
    grain = Granularity.HOUR
    if granularity not in (None, ""):
        if granularity in GRANULARITIES:
            grain = Granularity(granularity)
        else:
            allowed = ", ".join(GRANULARITIES)
            found.append(Problem("/granularity", "invalid_parameter", f"granularity is one of {allowed}"))
    key: uuid.UUID | None = None
    if key_id not in (None, ""):
        try:
            key = uuid.UUID(str(key_id))
        except ValueError:
            found.append(Problem("/key_id", "invalid_parameter", "key_id must be a UUID"))
    until = _moment(end, "to", found) if end else now
    since = _moment(start, "from", found) if start else None
    if until is not None and since is None and not start:
        since = until - DEFAULT_SPAN.get(grain, timedelta(days=30))
    if since is not None and until is not None:
        if since >= until:
            found.append(Problem("/from", "invalid_range", "from must be before to"))
        elif until - since > MAX_RANGE[grain]:
            days = MAX_RANGE[grain].days
            found.append(Problem("/to", "range_too_long", f"at {grain} granularity a query covers at most {days} days"))
    if found or since is None or until is None:
        raise RequestRefused(found)
    return UsageQuery(truncate(since, grain), until.astimezone(UTC), grain, key)
