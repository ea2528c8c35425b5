"""``vtp-notifier``: run the notifier service."""

from vtp_notifier.bootstrap import create_app
from vtp_notifier.settings import NotifierSettings
from vtp_runtime.serve import serve


def main() -> None:
    settings = NotifierSettings()
    serve(settings, lambda: create_app(settings))
