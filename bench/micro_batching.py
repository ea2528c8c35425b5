"""The in-process micro-batcher on ONNX Runtime (CPU): on against off, at concurrency 1, 8 and 32.

A yolo11n detect model (the architecture from its yaml, random weights: the compute is the same as a
trained one's) is exported to ONNX with a dynamic batch size in a temp dir. In one process, clients
(asyncio tasks, `--concurrency` at once) send one preprocessed image each, back to back, for
`--seconds` per mode, in `--rounds` alternations of off and on:

- off (baseline): each image runs alone, `InferenceSession.run` in a one-thread executor (the service's
  `VTP_INFERENCE_THREADING=fixed` with one worker), intra-op threads = cores, sequential execution;
- on: the same session behind `MicroBatcher(max_batch, max_delay)`, batches on the same executor.

It prints images per second, p50 and p99 latency, and the ratios on / off; also the cost per image of
one batch of `--max-batch` against `--max-batch` single runs. On a CPU the batch buys little or
nothing (ONNX Runtime already uses every core on one image), which is why the batcher is off by
default there (VTP_MICRO_BATCH=auto: on for accelerator sessions only).

    python bench/micro_batching.py [--imgsz 640] [--seconds 10] [--max-batch 8] [--delay-ms 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from vtp_inference.service_layer.batching import MicroBatcher

Infer = Callable[[np.ndarray], Awaitable[np.ndarray]]


def export_model(root: Path, imgsz: int) -> Path:
    os.environ.setdefault("YOLO_OFFLINE", "true")
    from ultralytics import YOLO

    cwd = Path.cwd()
    os.chdir(root)  # the export lands next to the model, here the working directory
    try:
        out = YOLO("yolo11n.yaml", task="detect").export(format="onnx", imgsz=imgsz, dynamic=True, verbose=False)
    finally:
        os.chdir(cwd)
    return root / Path(out).name


def session(path: Path, threads: int):  # type: ignore[no-untyped-def]
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


async def load(infer: Infer, x: np.ndarray, concurrency: int, seconds: float) -> tuple[float, list[float]]:
    """Images per second and every request's latency (s), `concurrency` clients back to back."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await infer(x)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - started), latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else values[0] * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--imgsz", type=int, default=640)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-batch", type=int, default=8)
    parser.add_argument("--delay-ms", type=float, default=2.0)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--rounds", type=int, default=4, help="off/on alternations per concurrency")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        sess = session(export_model(Path(tmp), args.imgsz), args.threads)
    name, out = sess.get_inputs()[0].name, sess.get_outputs()[0].name

    def run(x: np.ndarray) -> np.ndarray:
        return np.asarray(sess.run([out], {name: x})[0])

    x = np.random.default_rng(0).random((1, 3, args.imgsz, args.imgsz), dtype=np.float32)
    batch = np.repeat(x, args.max_batch, axis=0)
    run(batch), run(x)  # warm-up
    singles, batched = [], []
    for _ in range(5):  # alternated, best of each: the machine's other load hits both alike
        singles.append(_timed(lambda: [run(x) for _ in range(args.max_batch)]))
        batched.append(_timed(lambda: run(batch)))
    single, batch_s = min(singles), min(batched)
    print(f"yolo11n {args.imgsz}px, {args.threads} intra-op threads, ONNX Runtime CPU")
    print(f"{args.max_batch} single runs {single * 1000:.1f} ms, one batch of {args.max_batch} {batch_s * 1000:.1f} ms"
          f" (per image: x{single / batch_s:.2f} with the batch)")  # fmt: skip
    print(f"max batch {args.max_batch}, max delay {args.delay_ms} ms, {args.seconds:.0f} s per run")
    print("concurrency | off img/s  p50 ms  p99 ms | on img/s  p50 ms  p99 ms  mean batch | on/off img/s  p50  p99")
    executor = ThreadPoolExecutor(1)
    loop = asyncio.get_running_loop()

    async def alone(t: np.ndarray) -> np.ndarray:
        return await loop.run_in_executor(executor, run, t)

    for concurrency in args.concurrency:
        batcher = MicroBatcher(run, args.max_batch, args.delay_ms / 1000, executor)
        off_lat, on_lat, off_s, on_s = [], [], 0.0, 0.0
        for _ in range(args.rounds):  # off and on alternate, so a burst of other load hits both
            rate, lat = await load(alone, x, concurrency, args.seconds / args.rounds)
            off_lat, off_s = off_lat + lat, off_s + len(lat) / rate
            rate, lat = await load(batcher, x, concurrency, args.seconds / args.rounds)
            on_lat, on_s = on_lat + lat, on_s + len(lat) / rate
        off, on, mean_batch = len(off_lat) / off_s, len(on_lat) / on_s, statistics.mean(batcher.batches)
        o50, o99, b50, b99 = pct(off_lat, 50), pct(off_lat, 99), pct(on_lat, 50), pct(on_lat, 99)
        print(f"{concurrency:>11} | {off:>10.1f} {o50:>7.1f} {o99:>7.1f} | {on:>8.1f} {b50:>7.1f} {b99:>7.1f}"
              f" {mean_batch:>11.1f} | {on / off:>12.2f} {b50 / o50:>4.2f} {b99 / o99:>4.2f}")  # fmt: skip
    executor.shutdown()


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    asyncio.run(main())
