"""Where the CLI writes: a Rich console for people (stdout), one for errors (stderr), plain JSON for scripts."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rich.console import Console

# soft_wrap: long ids and URLs stay on one line, so they can be copied from the terminal.
out = Console(soft_wrap=True, highlight=False)
err = Console(stderr=True, soft_wrap=True, highlight=False)


def as_data(obj: Any) -> Any:
    """A resource as plain JSON data, whether the client gave a pydantic model, a dataclass or a dict."""
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json", by_alias=True)  # the names the API uses ("from", not "start")
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return as_data(dataclasses.asdict(obj))
    if isinstance(obj, Mapping):
        return {str(k): as_data(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [as_data(v) for v in obj]
    if isinstance(obj, datetime):
        return obj.isoformat()
    return obj


def print_json(obj: Any) -> None:
    """The raw resource, indented, nothing else on stdout (what `--json` promises scripts)."""
    print(json.dumps(as_data(obj), indent=2, default=str))


def items(page: Any) -> list[dict[str, Any]]:
    """The rows of a list answer: a page `{items, total, ...}` or a bare list."""
    data = as_data(page)
    if isinstance(data, dict) and "items" in data:
        return list(data["items"])
    return list(data) if isinstance(data, list) else []


def short(value: Any, size: int = 8) -> str:
    """A long id or digest cut for a table; `--json` and `show` give the whole value."""
    text = "" if value is None else str(value)
    return text if len(text) <= size + 1 else text[:size]


def num(value: Any, digits: int = 3) -> str:
    """A metric for a table; `-` when absent."""
    if value is None or value == "":
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 10 ** (-digits) or value == 0 else f"{value:.2e}"
    return str(value)


def size(n: Any) -> str:
    """Bytes as B / kB / MB / GB."""
    if not isinstance(n, int | float):
        return "-"
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


def when(value: Any) -> str:
    """A timestamp without its fraction and offset, for tables."""
    text = str(value or "-")
    return text[:19].replace("T", " ")


def pairs(values: Any) -> str:
    """`{"a": 1, "b": None}` as `a=1` for people: JSON spelling of booleans, unset values left out."""
    if not isinstance(values, dict) or not values:
        return "-"
    shown = {k: v for k, v in sorted(values.items()) if v is not None}
    return ", ".join(f"{k}={json.dumps(v) if isinstance(v, bool) else v}" for k, v in shown.items()) or "-"


def counts(values: Any) -> str:
    """`{"train": 19, "val": 5}` as `train 19, val 5` (train, val, test first)."""
    if not isinstance(values, dict) or not values:
        return "-"
    order = ["train", "val", "test", *sorted(k for k in values if k not in ("train", "val", "test"))]
    return ", ".join(f"{k} {values[k]}" for k in order if k in values)


def duration(seconds: float) -> str:
    """Seconds as `42 s`, `3 min 20 s` or `12 h 53 min`."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"
