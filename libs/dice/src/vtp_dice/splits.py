"""Train/val/test split assignment (docs/dice-format.md, "Splits").

Priority: the split given with a training job, then the dataset's stored configuration, then
`DEFAULT_SPLIT`. Methods:

- ``auto``: every image is assigned automatically; the labeler's `split` fields and any
  `assignments` are ignored.
- ``partial``: `assignments` win, then the labeler's `split` fields; the rest is assigned
  automatically.
- ``manual``: `assignments` and `split` fields must cover every image, else `SplitError`.

The default is ``partial`` at 80/20, seed 42: the format says a missing `split` field is
assigned by the split strategy, so an upload's own splits are kept and only the gaps filled.

Automatic assignment must give the same answer on every machine and Python version, so it
uses neither `random` nor `hash()`, and counts with exact fractions instead of floats:

1. Images are grouped into strata by dominant class (images without a class form one stratum).
2. The number of images per split for all of them is fixed by largest-remainder rounding of the
   ratios, so the totals honour the ratios within one image.
3. Each stratum gets the floor of its own quota per split; the images left over go, largest
   fractional quota first (ties by sha256 of seed and class), to the splits still short. A class
   therefore gets its share of each split within one image, and tiny classes do not all round
   the same way.
4. Within a stratum, images ordered by sha256(f"{seed}:{file_name}") fill train, then val, then test.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal

from vtp_dice.format import SPLITS, TASKS, Problem, Split, Task, normalize_file_name
from vtp_dice.validate import image_classes

Method = Literal["auto", "manual", "partial"]
METHODS: tuple[Method, ...] = ("auto", "manual", "partial")
MAX_PROBLEMS = 200
_SPLIT: dict[str, Split] = {s: s for s in SPLITS}


class SplitError(ValueError):
    """A split configuration that cannot be applied; carries every problem found (up to a cap)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s), first: {problems[0].code}" if problems else "split error")
        self.problems = problems


@dataclass(frozen=True)
class SplitConfig:
    """How to split: method, ratios (sum 1), seed, and per-file overrides for manual/partial."""

    method: Method
    train: float = 0.8
    val: float = 0.2
    test: float = 0.0
    seed: int = 42
    assignments: Mapping[str, Split] = field(default_factory=dict)

    def check(self) -> list[Problem]:
        problems: list[Problem] = []
        if self.method not in METHODS:
            problems.append(Problem("split_method_invalid", f"method {self.method!r} is not one of {METHODS}"))
        ratios = (self.train, self.val, self.test)
        if not all(isinstance(r, int | float) and not isinstance(r, bool) and math.isfinite(r) for r in ratios):
            problems.append(Problem("split_ratios_invalid", f"ratios must be numbers, got {ratios}"))
        elif min(ratios) < 0 or abs(sum(ratios) - 1) > 1e-6:
            problems.append(Problem("split_ratios_invalid", f"ratios must be >= 0 and sum to 1, got {ratios}"))
        for name, split in self.assignments.items():
            if split not in SPLITS:
                problems.append(Problem("invalid_split", f"split {split!r} is not one of {SPLITS}", f"images/{name}"))
        return problems

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stored with a dataset or snapshot, sent in job requests)."""
        return {
            "method": self.method,
            "train": self.train,
            "val": self.val,
            "test": self.test,
            "seed": self.seed,
            "assignments": dict(sorted(self.assignments.items())),
        }

    @staticmethod
    def from_dict(doc: Mapping[str, Any]) -> SplitConfig:
        return SplitConfig(
            doc["method"],
            doc.get("train", 0.8),
            doc.get("val", 0.2),
            doc.get("test", 0.0),
            doc.get("seed", 42),
            dict(doc.get("assignments") or {}),
        )

    def ratios(self) -> tuple[Fraction, ...]:
        """Exact ratios summing to exactly 1: repr() is the shortest round-trip form, the same everywhere."""
        exact = [Fraction(repr(float(r))) for r in (self.train, self.val, self.test)]
        return tuple(r / sum(exact) for r in exact)


DEFAULT_SPLIT = SplitConfig("partial", 0.8, 0.2, 0.0, 42, {})


def effective(job: SplitConfig | None, stored: SplitConfig | None) -> SplitConfig:
    """The configuration that applies: the job's, else the dataset's stored one, else the default."""
    return job if job is not None else stored if stored is not None else DEFAULT_SPLIT


def _digest(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def _largest_remainder(n: int, ratios: Sequence[Fraction]) -> list[int]:
    """Split n into len(ratios) integer counts; leftovers go to the largest fractional quotas, ties by split order."""
    quotas = [n * r for r in ratios]
    counts = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(ratios)), key=lambda j: (-(quotas[j] - counts[j]), j))
    for j in by_remainder[: n - sum(counts)]:
        counts[j] += 1
    return counts


def _auto(names: Sequence[str], strata: Mapping[str, str], config: SplitConfig) -> dict[str, Split]:
    groups: dict[str | None, list[str]] = {}
    for name in names:
        groups.setdefault(strata.get(name), []).append(name)
    keys = sorted(groups, key=lambda s: (s is None, s or ""))
    ratios = config.ratios()
    need = _largest_remainder(len(names), ratios)
    counts: dict[str | None, list[int]] = {}
    left: dict[str | None, int] = {}
    candidates: list[tuple[Fraction, str, int, str | None]] = []
    for s in keys:
        quotas = [len(groups[s]) * r for r in ratios]
        counts[s] = [math.floor(q) for q in quotas]
        left[s] = len(groups[s]) - sum(counts[s])
        need = [t - c for t, c in zip(need, counts[s], strict=True)]
        tie = _digest(config.seed, f"stratum:{s}" if s is not None else "no-class")
        candidates += [(q - c, tie, j, s) for j, (q, c) in enumerate(zip(quotas, counts[s], strict=True)) if q > c]
    for _, _, j, s in sorted(candidates, key=lambda c: (-c[0], c[1], c[2])):
        if left[s] > 0 and need[j] > 0:
            counts[s][j] += 1
            left[s] -= 1
            need[j] -= 1
    for s in keys:  # rare: a stratum whose own best splits are full takes a split that is still short
        while left[s] > 0:
            j = next(j for j, n in enumerate(need) if n > 0)
            counts[s][j], left[s], need[j] = counts[s][j] + 1, left[s] - 1, need[j] - 1
    out: dict[str, Split] = {}
    for s in keys:
        ordered = sorted(groups[s], key=lambda name: (_digest(config.seed, name), name))
        bounds = [sum(counts[s][: j + 1]) for j in range(len(SPLITS))]
        for i, name in enumerate(ordered):
            out[name] = SPLITS[next(j for j, b in enumerate(bounds) if i < b)]
    return out


def assign(
    file_names: Sequence[str], labeled: Mapping[str, Split], strata: Mapping[str, str], config: SplitConfig
) -> dict[str, Split]:
    """A split for every file name (in the order given); raises `SplitError` for a bad config or manual gaps."""
    problems = config.check()
    if problems:
        raise SplitError(problems)
    names = list(dict.fromkeys(file_names))
    fixed: dict[str, Split] = {}
    if config.method != "auto":
        for name in names:
            split = config.assignments.get(name) or labeled.get(name)
            if split is not None:
                fixed[name] = split
    rest = [name for name in names if name not in fixed]
    if config.method == "manual" and rest:
        msg = "a manual split must assign every image; this one has no split"
        problems = [Problem("split_unassigned", msg, f"images/{name}") for name in rest[:MAX_PROBLEMS]]
        if len(rest) > MAX_PROBLEMS:
            problems.append(Problem("too_many_problems", f"{len(rest) - MAX_PROBLEMS} more images have no split"))
        raise SplitError(problems)
    auto = _auto(rest, strata, config)
    return {name: fixed[name] if name in fixed else auto[name] for name in names}


def strata_from_docs(docs: Mapping[Task, dict[str, Any]]) -> dict[str, str]:
    """file_name -> its dominant class over all tasks (most annotations; ties by name). Unlabeled images are absent."""
    counts: dict[str, Counter[str]] = {}
    for task in TASKS:
        if task in docs:
            for name, labels in image_classes(task, docs[task]).items():
                counts.setdefault(name, Counter()).update(labels)
    return {name: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for name, c in counts.items() if c}


def labeled_splits(docs: Mapping[Task, dict[str, Any]]) -> dict[str, Split]:
    """file_name -> the valid `split` field the labeler gave; where tasks disagree the first in TASKS wins."""
    out: dict[str, Split] = {}
    for task in TASKS:
        listed = docs[task].get("images") if task in docs else None
        for img in listed if isinstance(listed, list) else []:
            name = img.get("file_name") if isinstance(img, dict) else None
            norm = normalize_file_name(name) if isinstance(name, str) else None
            split = img.get("split") if norm is not None else None
            if norm is not None and isinstance(split, str) and split in _SPLIT:
                out.setdefault(norm, _SPLIT[split])
    return out
