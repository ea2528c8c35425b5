"""Settings of the trainer runner (environment, prefix ``VTP_``)."""

from vtp_runtime.settings import ServiceSettings


class TrainerRunnerSettings(ServiceSettings):
    service_name: str = "trainer-runner"
    http_port: int = 8104
