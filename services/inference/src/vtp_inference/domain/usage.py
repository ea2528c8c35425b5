"""Usage metering: per-minute cells of counters and a mergeable latency histogram.

A cell is what one (minute, project, deployment, key) accumulated. Cells only ever add up, so
cells from several replicas and several flushes merge exactly, and hour and day cells are the
sums of their minutes. Latency goes into fixed log-spaced buckets (the same on every replica),
so percentiles of merged cells come from merged buckets, never from averaged percentiles.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple


class Granularity(StrEnum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"


GRANULARITIES = tuple(Granularity)
# Bucket 0 holds latencies under BASE_MS; bucket i (1..LAST-1) holds [BASE_MS*R^(i-1), BASE_MS*R^i);
# LAST holds everything above. R = 2^(1/8): a reported percentile is at most ~9 % above the truth.
BASE_MS = 0.1
RATIO = 2 ** (1 / 8)
LAST = 8 * 22 + 1  # up to 0.1 ms * 2^22 = 419 s


def bucket_of(latency_ms: float) -> int:
    """The histogram bucket of one latency."""
    if latency_ms < BASE_MS:
        return 0
    return min(LAST, 1 + int(math.log2(latency_ms / BASE_MS) * 8))  # log base RATIO = 8 x log2


def upper_bound_ms(bucket: int) -> float:
    """The largest latency bucket `bucket` holds (what a percentile reports: never an underestimate)."""
    return BASE_MS * RATIO ** min(bucket, LAST - 1)


def percentile_ms(latency: dict[int, int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) of a bucket histogram, as its bucket's upper bound; None when empty."""
    total = sum(latency.values())
    if total == 0:
        return None
    rank, seen = max(1, math.ceil(q * total)), 0
    for bucket in sorted(latency):
        seen += latency[bucket]
        if seen >= rank:
            return round(upper_bound_ms(bucket), 3)
    return round(upper_bound_ms(max(latency)), 3)  # unreachable: seen reaches total


class CellKey(NamedTuple):
    """Where a cell counts: the start of its period, and who used what (a tuple: cheap per request)."""

    start: datetime
    project_id: uuid.UUID
    deployment_id: uuid.UUID
    key_id: uuid.UUID | None  # None: a project token, not an API key

    def rolled(self, granularity: Granularity) -> CellKey:
        return CellKey(truncate(self.start, granularity), self.project_id, self.deployment_id, self.key_id)

    def sort_key(self) -> tuple[datetime, str, str, str]:
        return self.start, str(self.project_id), str(self.deployment_id), str(self.key_id or "")


@dataclass(slots=True)
class Cell:
    """Counters of one period; `merge` is exact and commutative."""

    requests: int = 0
    images: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # problem code -> count
    latency: dict[int, int] = field(default_factory=dict)  # histogram bucket -> count
    compute_seconds: float = 0.0  # time spent in the model runtime
    bytes_in: int = 0

    def add(self, images: int, latency_ms: float, compute_seconds: float, bytes_in: int, error: str | None) -> None:
        self.requests += 1
        self.images += images
        if error is not None:
            self.errors[error] = self.errors.get(error, 0) + 1
        bucket = bucket_of(latency_ms)
        self.latency[bucket] = self.latency.get(bucket, 0) + 1
        self.compute_seconds += compute_seconds
        self.bytes_in += bytes_in

    def merge(self, other: Cell) -> None:
        self.requests += other.requests
        self.images += other.images
        for code, n in other.errors.items():
            self.errors[code] = self.errors.get(code, 0) + n
        for bucket, n in other.latency.items():
            self.latency[bucket] = self.latency.get(bucket, 0) + n
        self.compute_seconds += other.compute_seconds
        self.bytes_in += other.bytes_in

    def summary(self) -> dict[str, object]:
        """The figures an API answer shows (percentiles in ms)."""
        return {
            "requests": self.requests,
            "images": self.images,
            "errors": sum(self.errors.values()),
            "errors_by_code": dict(sorted(self.errors.items())),
            "latency_ms": {f"p{q}": percentile_ms(self.latency, q / 100) for q in (50, 95, 99)},
            "compute_seconds": round(self.compute_seconds, 6),
            "bytes_in": self.bytes_in,
        }


def truncate(moment: datetime, granularity: Granularity) -> datetime:
    """The start (UTC) of the minute, hour or day holding `moment`."""
    moment = moment.astimezone(UTC)
    if granularity is Granularity.MINUTE:
        return moment.replace(second=0, microsecond=0)
    if granularity is Granularity.HOUR:
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


# The longest range one query may cover at each granularity (at most ~1,500 periods per series).
MAX_RANGE = {
    Granularity.MINUTE: timedelta(days=1),
    Granularity.HOUR: timedelta(days=62),
    Granularity.DAY: timedelta(days=1100),
}


@dataclass(frozen=True)
class Batch:
    """One flush of one replica: applied at most once, keyed by (replica_id, seq)."""

    replica_id: uuid.UUID
    seq: int
    cells: dict[CellKey, Cell]

    def rollup(self, granularity: Granularity) -> dict[CellKey, Cell]:
        """The batch's minute cells summed into hour or day cells (minutes: themselves)."""
        if granularity is Granularity.MINUTE:
            return self.cells
        out: dict[CellKey, Cell] = {}
        for key, cell in self.cells.items():
            out.setdefault(key.rolled(granularity), Cell()).merge(cell)
        return out


class Aggregator:
    """A replica's in-memory cells since the last drain (the event loop's thread only: no lock)."""

    def __init__(self) -> None:
        self._cells: dict[CellKey, Cell] = {}

    def record(
        self,
        key: CellKey,
        *,
        images: int,
        latency_ms: float,
        compute_seconds: float = 0.0,
        bytes_in: int = 0,
        error: str | None = None,
    ) -> None:
        cell = self._cells.get(key)
        if cell is None:
            cell = self._cells[key] = Cell()
        cell.add(images, latency_ms, compute_seconds, bytes_in, error)

    def merge(self, cells: dict[CellKey, Cell]) -> None:
        for key, cell in cells.items():
            self._cells.setdefault(key, Cell()).merge(cell)

    def drain(self) -> dict[CellKey, Cell]:
        cells, self._cells = self._cells, {}
        return cells

    def __len__(self) -> int:
        return len(self._cells)
