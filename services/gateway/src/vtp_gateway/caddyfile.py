"""Renders the Caddy configuration of the gateway from the routing table."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping

from vtp_gateway.routes import SERVICE_ROUTES


def render(listen: str, upstreams: Mapping[str, str], gateway_upstream: str) -> str:
    """A Caddyfile: each service's paths to its upstream, the rest to the gateway app.

    `upstreams` maps a service name to ``host:port``. The gateway app answers
    ``/api/v1/health`` and turns every unrouted path into 401/404 problem+json.
    WebSocket upgrades pass through ``reverse_proxy`` unchanged.
    """
    lines = [
        "{",
        "\tadmin off",
        "\tauto_https off",
        "\tpersist_config off",
        "}",
        "",
        f"http://{listen} {{",
    ]
    for service, prefixes in SERVICE_ROUTES.items():
        if service not in upstreams:
            continue
        paths = " ".join(f"{p} {p}/*" for p in prefixes)
        lines += [
            f"\t@{service} path {paths}",
            f"\thandle @{service} {{",
            f"\t\treverse_proxy {upstreams[service]}",
            "\t}",
        ]
    lines += ["\thandle {", f"\t\treverse_proxy {gateway_upstream}", "\t}", "}", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description="Print the gateway's Caddyfile.")
    parser.add_argument("--listen", default="127.0.0.1:8080", help="host:port Caddy listens on")
    parser.add_argument("--upstreams", required=True, help='JSON map, e.g. {"jobs": "jobs:8000"}')
    parser.add_argument("--gateway", required=True, help="host:port of the gateway app")
    args = parser.parse_args()
    print(render(args.listen, json.loads(args.upstreams), args.gateway), end="")


if __name__ == "__main__":
    main()
