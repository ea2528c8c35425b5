"""Which export toolchains this deployment has: probed once at start-up, never installed.

Each format runs in a Python environment: the service's own (the default formats, installed by
`make setup`), or a separate venv configured per format (`VTP_EXPORT_TOOLCHAIN_PYTHONS`, written by
`make setup-exporters`) for toolchains that conflict with the default ones. The service's own
environment is asked whether the modules are there (`importlib.util.find_spec`: cheap, it is the
environment this service was installed into), before the service starts serving. A separate venv
is asked to really import them, in a subprocess with a timeout, all venvs at once and in the
background (importing torch and a toolchain takes seconds, a minute on a loaded machine): until
its answer is in, its formats are unavailable as "being probed"; a venv that is half built, or
whose toolchain does not load, shows in capabilities with the reason instead of failing an export.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
from contextlib import suppress
from dataclasses import dataclass

from vtp_export.domain.formats import FORMATS, NOT_OFFERED

# argv: mode ("find" or "import"), then module names; prints {module: null | why it is not usable}.
# MNN's shared objects need an executable stack, which newer kernels refuse: Ultralytics loads it
# through `import_execstack`, so the probe does the same.
_PROBE = """
import importlib, importlib.util, json, sys
mode, found = sys.argv[1], {}
for name in sys.argv[2:]:
    try:
        if mode == "find":
            found[name] = None if importlib.util.find_spec(name) else "not installed"
        elif name == "MNN":
            from ultralytics.utils.files import import_execstack
            import_execstack("MNN", "_mnncengine*.so", "_tools*.so")
            found[name] = None
        else:
            importlib.import_module(name)
            found[name] = None
    except BaseException as exc:
        missing = isinstance(exc, ModuleNotFoundError) and exc.name and (name + ".").startswith(exc.name + ".")
        found[name] = "not installed" if missing else f"{type(exc).__name__}: {exc}"[:300]
print(json.dumps(found))
"""
SETUP_HINT = "run make setup-exporters"


@dataclass(frozen=True)
class Availability:
    available: bool
    reason: str | None
    python: str


def gpu_present() -> bool:
    return os.path.exists("/proc/driver/nvidia/version") or shutil.which("nvidia-smi") is not None


class Toolchains:
    def __init__(
        self, pythons: dict[str, str] | None = None, default_python: str = sys.executable, timeout: float = 600.0
    ) -> None:
        self._default = default_python
        self._pythons = {fmt: (pythons or {}).get(fmt, default_python) for fmt in FORMATS}
        self._found: dict[str, dict[str, str | None]] = {}
        self._errors: dict[str, str] = {}
        self._timeout = timeout
        self._gpu = gpu_present()
        self._venvs: asyncio.Task[None] | None = None

    def python_for(self, fmt: str) -> str:
        return self._pythons[fmt]

    async def probe(self) -> None:
        """At start-up: the service's own environment now, the separate venvs in the background."""
        by_python: dict[str, set[str]] = {}
        for fmt, python in self._pythons.items():
            if fmt not in NOT_OFFERED:
                by_python.setdefault(python, set()).update(FORMATS[fmt].modules)
        own = by_python.pop(self._default, set())
        if own:
            self._record(self._default, await _probe(self._default, "find", sorted(own), self._timeout))
        if by_python:
            self._venvs = asyncio.create_task(self._probe_venvs(by_python), name="export toolchain probe")

    async def wait_probed(self) -> None:
        """Until every venv has answered (tests, and callers that would rather wait than be refused)."""
        if self._venvs is not None:
            await asyncio.shield(self._venvs)

    async def aclose(self) -> None:
        if self._venvs is not None and not self._venvs.done():
            self._venvs.cancel()  # kills the probes' subprocesses
            with suppress(asyncio.CancelledError):
                await self._venvs

    async def _probe_venvs(self, by_python: dict[str, set[str]]) -> None:
        pythons = list(by_python)
        answers = await asyncio.gather(*(_probe(p, "import", sorted(by_python[p]), self._timeout) for p in pythons))
        for python, answer in zip(pythons, answers, strict=True):
            self._record(python, answer)

    def _record(self, python: str, answer: tuple[dict[str, str | None], str | None]) -> None:
        found, error = answer
        if error is None:
            self._found[python] = found
        else:
            self._errors[python] = error

    def availability(self, fmt: str) -> Availability:
        spec, python = FORMATS[fmt], self._pythons[fmt]
        hint = f" ({SETUP_HINT})" if spec.heavy else ""
        if fmt in NOT_OFFERED:
            return Availability(False, NOT_OFFERED[fmt], python)
        if spec.gpu and not self._gpu:
            return Availability(False, f"{spec.title} needs an NVIDIA GPU, and this exporter has none", python)
        if spec.gpu:  # the child exports on the CPU; a GPU route with its own parity tolerances is not written yet
            return Availability(False, f"{spec.title} exports are not implemented by this exporter yet", python)
        if python in self._errors:
            return Availability(False, f"{self._errors[python]}{hint}", python)
        found = self._found.get(python)
        if found is None and self._venvs is not None and not self._venvs.done():
            return Availability(False, f"its environment {python} is being probed (start-up); ask again soon", python)
        if found is None:
            return Availability(False, f"the Python environment {python} was not probed", python)
        missing = [m for m in spec.modules if found.get(m, "not probed") == "not installed"]
        if missing:
            return Availability(False, f"toolchain not installed: {', '.join(missing)}{hint}", python)
        broken = [f"{m}: {found[m]}" for m in spec.modules if found.get(m)]
        if broken:
            return Availability(False, f"toolchain does not load in {python}: {'; '.join(broken)}{hint}", python)
        return Availability(True, None, python)


async def _probe(
    python: str, mode: str, modules: list[str], timeout: float
) -> tuple[dict[str, str | None], str | None]:
    """({module: None or why not}, None), or ({}, why the interpreter gave no answer)."""
    try:
        process = await asyncio.create_subprocess_exec(
            python,
            "-c",
            _PROBE,
            mode,
            *modules,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            # Importing Ultralytics must not try the network or write settings next to the service.
            env={**_clean_env(), "YOLO_OFFLINE": "true", "YOLO_AUTOINSTALL": "false"},
        )
    except OSError as exc:
        return {}, f"the Python environment {python} is missing ({exc.strerror or exc})"
    try:
        out, _ = await asyncio.wait_for(process.communicate(), timeout)
    except (TimeoutError, asyncio.CancelledError) as exc:
        with suppress(ProcessLookupError):
            process.kill()
        await asyncio.shield(process.wait())
        if isinstance(exc, asyncio.CancelledError):
            raise
        return {}, f"probing {python} took longer than {timeout:.0f} s"
    try:
        found: dict[str, str | None] = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {}, f"the Python environment {python} did not answer the probe (exit code {process.returncode})"
    return found, None


def _clean_env() -> dict[str, str]:
    """The service's environment without its own settings (store and broker credentials stay here)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("VTP_")}
