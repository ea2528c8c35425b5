"""``vtp-gateway``: run the gateway app (Caddy runs beside it)."""

from vtp_gateway.bootstrap import create_app
from vtp_gateway.settings import GatewaySettings
from vtp_runtime.serve import serve


def main() -> None:
    settings = GatewaySettings()
    serve(settings, lambda: create_app(settings))
