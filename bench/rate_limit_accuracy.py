"""Rate limit accuracy with two inference replicas: the admitted rate against the limit N per second.

A local stack with two inference replicas is started on free ports and a small detect model
deployed (see access_common). A key with `per_second = N` is created; client threads send predicts
of one small JPEG to both replicas alternately (directly, so each replica gets half), well above N,
for `--seconds`. The bucket starts full (a burst of N), so the admitted rate is measured from the
first refusal on: admitted requests in that window / its length. Prints it, N and the ratio
(issue 12's goal: within 5 % of N).

    python bench/rate_limit_accuracy.py [--limit 5] [--seconds 30] [--threads 8]

The offered load must exceed N: on a busy 2-core machine a predict takes ~100 ms, hence N = 5.
"""

from __future__ import annotations

import argparse
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from access_common import access_stack, jpeg, new_key, predict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=5, help="N: the key's requests per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    with access_stack(replicas=2) as setup:
        key = new_key(setup, {"per_second": args.limit})
        image, deployment = jpeg(), setup.deployment["id"]
        for url in setup.replicas:  # warm-up: model loaded and key cached on both, bucket drained
            with httpx.Client(base_url=url, timeout=60) as client:
                for _ in range(3):
                    predict(client, deployment, key, image)
        events: list[tuple[float, int, int]] = []  # (time, status, replica)
        lock = threading.Lock()
        stop_at = time.monotonic() + args.seconds

        def worker(index: int) -> None:
            replica = index % len(setup.replicas)
            with httpx.Client(base_url=setup.replicas[replica], timeout=60) as client:
                while time.monotonic() < stop_at:
                    status = predict(client, deployment, key, image)
                    with lock:
                        events.append((time.monotonic(), status, replica))

        with ThreadPoolExecutor(args.threads) as pool:
            list(pool.map(worker, range(args.threads)))
    statuses = {s for _, s, _ in events}
    assert statuses <= {200, 429}, statuses
    if 429 not in statuses:
        raise SystemExit(f"never over the limit ({len(events) / args.seconds:.1f}/s offered): lower --limit")
    first_refusal = min(t for t, s, _ in events if s == 429)
    window = [(t, s, r) for t, s, r in events if t > first_refusal]
    span = max(t for t, _, _ in window) - first_refusal
    admitted = sum(1 for _, s, _ in window if s == 200)
    per_replica = [sum(1 for _, s, r in window if s == 200 and r == i) for i in range(len(setup.replicas))]
    rate = admitted / span
    print(f"\nlimit N = {args.limit}/s, {len(setup.replicas)} replicas, {args.threads} client threads")
    print(f"  requests sent: {len(events)} ({len(events) / args.seconds:.1f}/s offered)")
    print(f"  admitted after the first refusal: {admitted} in {span:.2f} s (per replica {per_replica})")
    print(f"  admitted rate {rate:.2f}/s; ratio admitted / N = {rate / args.limit:.3f} (goal 0.95 .. 1.05)")


if __name__ == "__main__":
    main()
