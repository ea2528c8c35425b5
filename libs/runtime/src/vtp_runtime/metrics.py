"""Process-wide counters in the Prometheus text format (``GET /metrics``, admin token).

Deliberately tiny: a handful of counters the platform needs to alert on (dead letters,
background restarts), no client library, no histograms.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# name -> (type, help); a sample of an unknown name is rendered as untyped.
KNOWN = {
    "vtp_dead_letters_total": ("counter", "Events moved to a dead-letter topic, by original topic and consumer group."),
    "vtp_background_task_restarts_total": ("counter", "Restarts of a supervised background task after a failure."),
    "vtp_background_task_failing": ("gauge", "1 while a background task keeps failing (health is 503)."),
}


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _line(sample: Sample) -> str:
    labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(sample.labels.items()))
    value = int(sample.value) if sample.value.is_integer() else sample.value
    return f"{sample.name}{{{labels}}} {value}" if labels else f"{sample.name} {value}"


class Metrics:
    """Monotonic counters keyed by name and labels."""

    def __init__(self) -> None:
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = (name, tuple(sorted(labels.items())))
        self._counters[key] = self._counters.get(key, 0.0) + amount

    def value(self, name: str, **labels: str) -> float:
        return self._counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def samples(self) -> list[Sample]:
        return [Sample(name, dict(labels), value) for (name, labels), value in self._counters.items()]

    def render(self, extra: Iterable[Sample] = ()) -> str:
        """The exposition text of every counter plus `extra` samples, grouped by name."""
        by_name: dict[str, list[Sample]] = {}
        for sample in [*self.samples(), *extra]:
            by_name.setdefault(sample.name, []).append(sample)
        lines: list[str] = []
        for name in sorted(by_name):
            kind, help_text = KNOWN.get(name, ("untyped", name))
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            lines += [_line(s) for s in by_name[name]]
        return "\n".join(lines) + "\n"


METRICS = Metrics()  # the process's registry (a service is one process)
