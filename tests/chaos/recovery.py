"""Each scenario's result and how long recovery took, collected for the end-of-run summary."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

RESULTS: list[dict[str, Any]] = []


@dataclass
class Clock:
    """Times of one scenario, in seconds from the fault."""

    scenario: str
    fault_at: float = field(default_factory=time.monotonic)
    marks: dict[str, float] = field(default_factory=dict)

    def fault(self) -> None:
        self.fault_at = time.monotonic()

    def mark(self, name: str) -> float:
        """Record `name` as now; returns seconds since the fault."""
        self.marks[name] = round(time.monotonic() - self.fault_at, 1)
        return self.marks[name]


@contextmanager
def scenario(name: str) -> Iterator[Clock]:
    """Run one scenario; its outcome and marks go to RESULTS whatever happens."""
    clock = Clock(name)
    outcome = "passed"
    try:
        yield clock
    except BaseException as exc:
        outcome = f"FAILED: {type(exc).__name__}: {str(exc).splitlines()[0][:160] if str(exc) else ''}"
        raise
    finally:
        RESULTS.append({"scenario": name, "result": outcome, **clock.marks})


def summary_lines() -> list[str]:
    marks = sorted({k for r in RESULTS for k in r if k not in ("scenario", "result")})
    widths = {m: max(8, len(m) + 2) for m in marks}
    header = f"{'scenario':<28}" + "".join(f"{m:>{widths[m]}}" for m in marks) + "  result"
    lines = [header, "(seconds from the fault until each mark)"]
    for r in RESULTS:
        cells = "".join(f"{r.get(m, '-'):>{widths[m]}}" for m in marks)
        lines.append(f"{r['scenario']:<28}{cells}  {r['result']}")
    return lines
