"""Settings of the inference service (environment, prefix ``VTP_``)."""

from vtp_runtime.settings import ServiceSettings


class InferenceSettings(ServiceSettings):
    service_name: str = "inference"
    http_port: int = 8106
