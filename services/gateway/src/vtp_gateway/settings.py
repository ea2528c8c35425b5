"""Settings of the gateway app (environment, prefix ``VTP_``)."""

from pydantic import Field

from vtp_runtime.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    service_name: str = "gateway"
    http_port: int = 8108
    health_targets: dict[str, str] = Field(
        default_factory=dict,
        description='Service name to base URL, as JSON: {"jobs": "http://127.0.0.1:8102", ...}',
    )
