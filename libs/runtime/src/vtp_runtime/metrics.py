"""Process-wide metrics in the Prometheus text format (``GET /metrics``, admin token).

Deliberately tiny and dependency-free: counters, gauges and fixed-bucket histograms, no
client library. Every update holds one lock, since inference runs in worker threads too.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable
from dataclasses import dataclass

# name -> (type, help); a sample of an unknown name is rendered as untyped.
KNOWN = {
    "vtp_dead_letters_total": ("counter", "Events moved to a dead-letter topic, by original topic and consumer group."),
    "vtp_background_task_restarts_total": ("counter", "Restarts of a supervised background task after a failure."),
    "vtp_background_task_failing": ("gauge", "1 while a background task keeps failing (health is 503)."),
}
# Seconds, from a cached model's few milliseconds to a cold load or a slow batch.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
Key = tuple[str, tuple[tuple[str, str], ...]]


@dataclass(frozen=True)
class Sample:
    name: str
    labels: dict[str, str]
    value: float


@dataclass
class _Histogram:
    bounds: tuple[float, ...]
    counts: list[int]  # per bucket (not cumulative); the last one is +Inf
    total: float = 0.0


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return "+Inf" if value == float("inf") else str(int(value) if float(value).is_integer() else value)


def _line(sample: Sample) -> str:
    labels = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(sample.labels.items()))
    value = _number(sample.value)
    return f"{sample.name}{{{labels}}} {value}" if labels else f"{sample.name} {value}"


def _key(name: str, labels: dict[str, str]) -> Key:
    return name, tuple(sorted(labels.items()))


class Metrics:
    """Counters, gauges and histograms keyed by name and labels."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[Key, float] = {}
        self._gauges: dict[Key, float] = {}
        self._histograms: dict[Key, _Histogram] = {}
        self._kinds: dict[str, tuple[str, str]] = {}  # declared with a help text (histogram, gauge)

    def declare(self, name: str, kind: str, help_text: str) -> None:
        """Give `name` its TYPE and HELP lines (unknown names render as untyped)."""
        with self._lock:
            self._kinds[name] = (kind, help_text)

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        key = _key(name, labels)
        with self._lock:
            self._counters[key] = self._counters.get(key, 0.0) + amount

    def set(self, name: str, value: float, **labels: str) -> None:
        """A gauge: the value now (cache size, models loaded)."""
        with self._lock:
            self._gauges[_key(name, labels)] = value

    def observe(self, name: str, value: float, buckets: tuple[float, ...] = LATENCY_BUCKETS, **labels: str) -> None:
        """One observation of a histogram; its buckets are fixed by the first observation."""
        key = _key(name, labels)
        with self._lock:
            histogram = self._histograms.get(key)
            if histogram is None:
                bounds = tuple(sorted(buckets))
                histogram = self._histograms[key] = _Histogram(bounds, [0] * (len(bounds) + 1))
            histogram.counts[bisect.bisect_left(histogram.bounds, value)] += 1  # le: value <= bound
            histogram.total += value

    def value(self, name: str, **labels: str) -> float:
        key = _key(name, labels)
        with self._lock:
            return self._counters.get(key, self._gauges.get(key, 0.0))

    def samples(self) -> list[Sample]:
        """Every counter and gauge, then each histogram as its `_bucket`, `_sum` and `_count` series."""
        with self._lock:
            plain = [*self._counters.items(), *self._gauges.items()]
            histograms = [(k, _Histogram(h.bounds, list(h.counts), h.total)) for k, h in self._histograms.items()]
        found = [Sample(name, dict(labels), value) for (name, labels), value in plain]
        for (name, labels), h in histograms:
            cumulative = 0
            for bound, count in zip((*h.bounds, float("inf")), h.counts, strict=True):
                cumulative += count
                found.append(Sample(f"{name}_bucket", {**dict(labels), "le": _number(bound)}, cumulative))
            found += [Sample(f"{name}_sum", dict(labels), h.total), Sample(f"{name}_count", dict(labels), cumulative)]
        return found

    def _family(self, name: str) -> str:
        """The metric family a sample belongs to (a histogram's series share one TYPE line)."""
        for suffix in ("_bucket", "_sum", "_count"):
            base = name.removesuffix(suffix)
            if base != name and self._kinds.get(base, ("",))[0] == "histogram":
                return base
        return name

    def render(self, extra: Iterable[Sample] = ()) -> str:
        """The exposition text of every metric plus `extra` samples, grouped by family."""
        by_family: dict[str, list[Sample]] = {}
        for sample in [*self.samples(), *extra]:
            by_family.setdefault(self._family(sample.name), []).append(sample)
        lines: list[str] = []
        for name in sorted(by_family):
            kind, help_text = self._kinds.get(name) or KNOWN.get(name, ("untyped", name))
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
            lines += [_line(s) for s in by_family[name]]
        return "\n".join(lines) + "\n"


METRICS = Metrics()  # the process's registry (a service is one process)
