"""CPU an idle local stack burns: each component's share of one core, measured from /proc.

Nothing is sent to the stack while it is measured. For each component (the pid files of the run
directory) the CPU time of its process and every descendant (utime + stime, plus what exited children
left in cutime + cstime) is read at the start and end of a window; the difference over the window's
wall time is the share of one core. Only the stack's own processes count, so other load on the machine
barely matters (it only stretches what the stack does while it waits for a core). Several windows are
taken and the median of each component is printed with the spread of the total.

By default the stack of `make up` (`.vtp`) is measured; `--isolated` starts a fresh stack on free ports
in a temporary directory first (left idle for `--settle` seconds after it is healthy) and stops it after.

Goal (issue 9): the idle stack under 10 % of one core in total.

    python bench/idle_cpu.py [--run-dir .vtp | --isolated] [--seconds 20] [--samples 3] [--settle 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from vtp_localstack.config import StackConfig
from vtp_localstack.ports import isolated_config
from vtp_localstack.processes import ProcessTable
from vtp_localstack.stack import LocalStack

TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_ticks(pid: int) -> int:
    """utime + stime + cutime + cstime of one process, in clock ticks (0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    return sum(int(f) for f in fields[11:15])  # fields 14-17 of proc(5), counted from `state`


def _tree(root: psutil.Process) -> dict[int, float]:
    """Every process of a component: pid -> start time (a recycled pid is another process)."""
    out = {}
    for proc in [root, *root.children(recursive=True)]:
        try:
            out[proc.pid] = proc.create_time()
        except psutil.Error:
            continue
    return out


def _components(table: ProcessTable) -> dict[str, psutil.Process]:
    found = {name: table.find(name) for name in table.names()}
    return {name: proc for name, proc in found.items() if proc is not None}


def measure(table: ProcessTable, seconds: float) -> dict[str, float]:
    """Share of one core (1.0 = one core busy) of each component over `seconds`."""
    roots = _components(table)
    trees = {name: _tree(proc) for name, proc in roots.items()}
    before = {name: {pid: _cpu_ticks(pid) for pid in pids} for name, pids in trees.items()}
    start = time.monotonic()
    time.sleep(seconds)
    elapsed = time.monotonic() - start
    shares = {}
    for name, proc in roots.items():
        now = _tree(proc)
        ticks = 0
        for pid, created in now.items():
            # A process that appeared within the window counts from zero; one that exited is in
            # its parent's cutime/cstime once reaped (measured again at the end).
            ticks += _cpu_ticks(pid) - (before[name].get(pid, 0) if trees[name].get(pid) == created else 0)
        shares[name] = ticks / TICKS / elapsed
    return shares


@contextmanager
def isolated_stack(settle: float, env: dict[str, str]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="vtp-idle-") as tmp:
        stack = LocalStack(isolated_config(Path(tmp), extra_service_env=env))
        try:
            print("starting an isolated stack ...", flush=True)
            stack.up()
            print(f"up; letting it settle {settle:.0f} s", flush=True)
            time.sleep(settle)
            yield stack.cfg.run_path
        finally:
            stack.down()


def report(samples: list[dict[str, float]]) -> dict[str, float]:
    names = sorted({n for s in samples for n in s}, key=lambda n: -statistics.median(s.get(n, 0) for s in samples))
    medians = {n: statistics.median(s.get(n, 0.0) for s in samples) for n in names}
    totals = [sum(s.values()) for s in samples]
    width = max(len(n) for n in names)
    print(f"\n{'component':<{width}}  % of one core (median of {len(samples)})")
    for name in names:
        print(f"{name:<{width}}  {medians[name] * 100:6.1f}")
    print(
        f"{'total':<{width}}  {statistics.median(totals) * 100:6.1f}   (samples: "
        + ", ".join(f"{t * 100:.1f}" for t in totals)
        + ")"
    )
    return {**medians, "total": statistics.median(totals)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, default=None, help="run directory of the stack (default: .vtp)")
    parser.add_argument("--isolated", action="store_true", help="start a fresh stack on free ports and measure it")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of one measuring window")
    parser.add_argument("--samples", type=int, default=3, help="windows to take (the median is reported)")
    parser.add_argument("--settle", type=float, default=20.0, help="idle time before measuring (--isolated)")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for every service (--isolated)")
    parser.add_argument("--json", type=Path, default=None, help="also write the medians here")
    args = parser.parse_args()

    env = dict(item.split("=", 1) for item in args.env)
    with isolated_stack(args.settle, env) if args.isolated else _existing(args.run_dir) as run_dir:
        table = ProcessTable(run_dir)
        if not _components(table):
            raise SystemExit(f"no running stack in {run_dir} (make up first, or --isolated)")
        samples = []
        for i in range(args.samples):
            samples.append(measure(table, args.seconds))
            print(
                f"window {i + 1}/{args.samples}: total {sum(samples[-1].values()) * 100:.1f} % of one core", flush=True
            )
    result = report(samples)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


@contextmanager
def _existing(run_dir: Path | None) -> Iterator[Path]:
    yield run_dir or StackConfig().run_path


if __name__ == "__main__":
    main()
