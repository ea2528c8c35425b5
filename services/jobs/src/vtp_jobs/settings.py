"""Settings of the jobs service (environment, prefix ``VTP_``)."""

from pydantic import Field

from vtp_runtime.settings import ServiceSettings


class JobsSettings(ServiceSettings):
    service_name: str = "jobs"
    http_port: int = 8102
    datasets_url: str = Field("http://127.0.0.1:8103", description="Datasets service, for pinning snapshots.")
    heartbeat_timeout_seconds: float = Field(30.0, gt=0, description="Silence after which a running job is requeued.")
    heartbeat_check_seconds: float = Field(5.0, gt=0, description="How often silent jobs are looked for.")
    queued_republish_seconds: float = Field(
        120.0,
        ge=0,
        description="A queued job no runner has taken or spoken about for this long gets its command again "
        "(lost with the broker); 0: never.",
    )
    runner_group: str = Field("trainer-runners", description="The runners' consumer group on job.requested.")
