"""Settings of the datasets service (environment, prefix ``VTP_``)."""

from vtp_runtime.settings import ServiceSettings


class DatasetsSettings(ServiceSettings):
    service_name: str = "datasets"
    http_port: int = 8103
