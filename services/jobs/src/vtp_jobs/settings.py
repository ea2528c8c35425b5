"""Settings of the jobs service (environment, prefix ``VTP_``)."""

from vtp_runtime.settings import ServiceSettings


class JobsSettings(ServiceSettings):
    service_name: str = "jobs"
    http_port: int = 8102
