"""``vtp-export``: run the export service."""

from vtp_export.bootstrap import create_app
from vtp_export.settings import ExportSettings
from vtp_runtime.serve import serve


def main() -> None:
    settings = ExportSettings()
    serve(settings, lambda: create_app(settings))
