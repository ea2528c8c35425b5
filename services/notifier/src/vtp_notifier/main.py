"""``vtp-notifier``: run the notifier service."""

from vtp_notifier.bootstrap import create_app
from vtp_notifier.settings import NotifierSettings
from vtp_runtime.serve import serve


def main() -> None:
    settings = NotifierSettings()
    # Protocol-level pings keep idle sockets alive through proxies and find dead peers.
    serve(
        settings,
        lambda: create_app(settings),
        ws_ping_interval=settings.ws_ping_seconds,
        ws_ping_timeout=settings.ws_ping_seconds,
    )
