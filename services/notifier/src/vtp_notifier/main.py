"""``vtp-notifier``: run the notifier service."""

from vtp_notifier.bootstrap import create_app
from vtp_notifier.settings import NotifierSettings
from vtp_runtime.serve import serve


def main() -> None:
    settings = NotifierSettings()
    # Protocol-level pings keep idle sockets alive through proxies and find dead peers. Feed
    # messages are small JSON: compressing each one costs more CPU (latency) than it saves.
    serve(
        settings,
        lambda: create_app(settings),
        ws_ping_interval=settings.ws_ping_seconds,
        ws_ping_timeout=settings.ws_ping_seconds,
        ws_per_message_deflate=False,
    )
