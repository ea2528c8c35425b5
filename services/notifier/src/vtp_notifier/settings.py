"""Settings of the notifier service (environment, prefix ``VTP_``)."""

from vtp_runtime.settings import ServiceSettings


class NotifierSettings(ServiceSettings):
    service_name: str = "notifier"
    http_port: int = 8107
