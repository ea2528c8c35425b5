"""``vtp-datasets``: run the datasets service."""

from vtp_datasets.bootstrap import create_app
from vtp_datasets.settings import DatasetsSettings
from vtp_runtime.serve import serve


def main() -> None:
    settings = DatasetsSettings()
    serve(settings, lambda: create_app(settings))
