"""Settings of the identity service (environment, prefix ``VTP_``)."""

from pydantic import Field

from vtp_runtime.settings import ServiceSettings


class IdentitySettings(ServiceSettings):
    service_name: str = "identity"
    http_port: int = 8101
    token_cache_seconds: float = 5.0
    bootstrap_token_file: str | None = Field(
        ".vtp/admin-token", description="Where the first start writes the default project's admin token (mode 600)."
    )
    bootstrap_admin_token: str | None = Field(
        None, description="Use this value as the bootstrap admin token instead of a random one (compose, CI)."
    )
    bootstrap_project: str = Field("default", description="Slug of the project created on first start.")
