"""Renders the Caddy configuration of the gateway from the routing table."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence

from vtp_gateway.routes import SERVICE_ROUTES

# Caddy drops a pooled upstream connection after this much idle time, before the service's own
# keep-alive timeout (vtp_runtime.serve, 75 s) closes it: a request never lands on a connection
# the service is closing, which for a POST (not retried) would be a 502.
UPSTREAM_KEEPALIVE = "60s"

# When an upstream cannot be reached or drops the connection, Caddy answers this problem+json,
# never an empty body. The object's own braces are escaped (\{ \}) so Caddy reads only
# {err.status_code} as a placeholder; it is a number, so the JSON stays valid.
PROBLEM_BODY = (
    r'\{"type":"https://vtp.dev/problems/upstream_unavailable","title":"Service unavailable",'
    '"status":{err.status_code},"code":"upstream_unavailable",'
    r'"detail":"The service behind this route did not answer; try again shortly."\}'
)


# Several replicas of a service: round robin, a replica that fails its liveness probe (or a
# connection) is skipped, and a request whose connection cannot be made tries another one.
# Liveness, not /health: a dependency that is down degrades every replica's /health alike.
LIVENESS_PATHS = {"inference": "/v2/health/live"}


def _balanced(service: str) -> list[str]:
    return [
        "\t\t\tlb_policy round_robin",
        "\t\t\tlb_try_duration 5s",
        "\t\t\tfail_duration 10s",
        f"\t\t\thealth_uri {LIVENESS_PATHS.get(service, '/health')}",
        "\t\t\thealth_interval 2s",
        "\t\t\thealth_timeout 3s",
    ]


def _proxy(upstream: str | Sequence[str], service: str = "") -> list[str]:
    replicas = [upstream] if isinstance(upstream, str) else list(upstream)
    return [
        f"\t\treverse_proxy {' '.join(replicas)} {{",
        *(_balanced(service) if len(replicas) > 1 else []),
        "\t\t\ttransport http {",
        f"\t\t\t\tkeepalive {UPSTREAM_KEEPALIVE}",
        "\t\t\t}",
        "\t\t}",
    ]


def render(listen: str, upstreams: Mapping[str, str | Sequence[str]], gateway_upstream: str) -> str:
    """A Caddyfile: each service's paths to its upstream, the rest to the gateway app.

    `upstreams` maps a service name to ``host:port``, or to a list of them (its replicas, load-balanced).
    The gateway app answers ``/api/v1/health`` and turns every unrouted path into 401/404 problem+json.
    WebSocket upgrades pass through ``reverse_proxy`` unchanged. An upstream failure
    answers problem+json ``upstream_unavailable`` with Caddy's status (502, 503 or 504).
    """
    lines = [
        "{",
        "\tadmin off",
        "\tauto_https off",
        "\tpersist_config off",
        "}",
        "",
        f"http://{listen} {{",
        "\thandle_errors {",
        "\t\theader Content-Type application/problem+json",
        f"\t\trespond `{PROBLEM_BODY}` {{err.status_code}}",
        "\t}",
    ]
    for service, prefixes in SERVICE_ROUTES.items():
        if service not in upstreams:
            continue
        paths = " ".join(f"{p} {p}/*" for p in prefixes)
        lines += [
            f"\t@{service} path {paths}",
            f"\thandle @{service} {{",
            *_proxy(upstreams[service], service),
            "\t}",
        ]
    lines += ["\thandle {", *_proxy(gateway_upstream), "\t}", "}", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the gateway's Caddyfile.")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="host:port Caddy listens on")
    parser.add_argument(
        "--upstreams", required=True, help='JSON map, e.g. {"jobs": "jobs:8000", "inference": ["i1:8000", "i2:8000"]}'
    )
    parser.add_argument("--gateway", required=True, help="host:port of the gateway app")
    args = parser.parse_args()
    print(render(args.listen, json.loads(args.upstreams), args.gateway), end="")


if __name__ == "__main__":
    main()
