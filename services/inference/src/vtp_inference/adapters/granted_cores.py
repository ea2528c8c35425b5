"""The cores granted to the job running in this context (service_layer/cores.py sets it around each job).

A runtime that can use fewer threads when it shares the machine (ONNX Runtime on a CPU) reads it to
pick its session. Unset, outside a scheduled job (a probe at deployment creation, a test), a runtime
uses all of its threads.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import TypeVar

T = TypeVar("T")

_GRANTED: ContextVar[int | None] = ContextVar("vtp_inference_granted_cores", default=None)


def granted() -> int | None:
    """The cores this job may use, or None: no grant (all of a runtime's threads)."""
    return _GRANTED.get()


def run_granted(cores: int, function: Callable[..., T], *args: object) -> T:
    """`function(*args)` with `cores` granted; run it in a context of its own (contextvars.Context.run)."""
    _GRANTED.set(cores)
    return function(*args)
