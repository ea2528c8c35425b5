"""Ultralytics-style `key=value` arguments: `epochs=50 imgsz=640 amp=false lr0=1e-3 name="my run"`.

Values become int, float, bool or None where they read as one (`true`/`false`, `none`/`null`,
any case), JSON lists and objects where they start with `[` or `{`, and strings otherwise.
The server validates the keys and values; this module only reads them.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any

import typer

_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_INT = re.compile(r"^[+-]?\d+$")


def parse_value(text: str) -> Any:
    """One value, typed the way Ultralytics reads its command line."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    if _INT.match(text.strip()):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        if math.isfinite(number):  # `nan` and `inf` stay strings: no setting wants them
            return number
    if text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            pass
    return text


def is_pair(arg: str) -> bool:
    """Whether an argument reads as `key=value`."""
    key, sep, _ = arg.partition("=")
    return bool(sep) and bool(_KEY.match(key))


def parse_pairs(args: Iterable[str], param: str = "ARGS") -> dict[str, Any]:
    """`key=value` arguments as a dict (a later key wins, as in Ultralytics); anything else is a usage error."""
    args = list(args)
    values: dict[str, Any] = {}
    bad = [a for a in args if not is_pair(a)]
    if bad:
        raise typer.BadParameter(f"expected key=value, got {', '.join(repr(b) for b in bad)}", param_hint=f"'{param}'")
    for arg in args:
        key, _, value = arg.partition("=")
        values[key] = parse_value(value)
    return values
