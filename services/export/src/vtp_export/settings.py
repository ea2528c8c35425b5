"""Settings of the export service (environment, prefix ``VTP_``)."""

from vtp_runtime.settings import ServiceSettings


class ExportSettings(ServiceSettings):
    service_name: str = "export"
    http_port: int = 8105
