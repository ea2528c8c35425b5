"""Settings of the notifier service (environment, prefix ``VTP_``)."""

from __future__ import annotations

import ipaddress

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from vtp_runtime.settings import ServiceSettings


class FeedSettings(BaseSettings):
    """The live feed: history kept for resuming, and what one WebSocket client may hold."""

    model_config = SettingsConfigDict(env_prefix="VTP_", extra="ignore")

    feed_retention_hours: float = Field(168.0, gt=0, description="How long events stay replayable with `since`.")
    feed_history_limit: int = Field(5000, ge=1, description="Most events one subscribe replays before going live.")
    ws_send_buffer: int = Field(1000, ge=1, description="Messages queued for one client before it is dropped.")
    ws_ticket_seconds: float = Field(30.0, gt=0, description="Lifetime of a single-use browser ticket.")
    ws_ping_seconds: float = Field(20.0, gt=0, description="Interval of WebSocket protocol pings (keepalive).")
    ws_recheck_seconds: float = Field(
        60.0, gt=0, description="How often an open socket's bearer token is verified again (revocation)."
    )
    feed_channel: str = Field("vtp:notifier:feed", description="Redis pub/sub channel every replica listens on.")
    feed_fetch_max_wait_ms: int = Field(
        10,
        ge=1,
        description="Longest the broker may hold an empty fetch. Apache Kafka answers as soon as data arrives, "
        "so 500 costs no latency there; the local Tansu broker holds it the whole time.",
    )
    feed_poll_pause_ms: int = Field(
        5, ge=1, description="Pause after an empty poll; with the fetch wait, the idle cost of a low latency."
    )
    feed_idle_after_seconds: float = Field(
        10.0, gt=0, description="Time without an event after which the feed consumer polls at the idle pace."
    )
    feed_idle_fetch_max_wait_ms: int = Field(
        500, ge=1, description="Fetch wait while idle: the most the first event after a quiet spell waits (Tansu)."
    )
    feed_idle_poll_pause_ms: int = Field(100, ge=1, description="Pause after an empty poll while idle.")


class WebhookSettings(BaseSettings):
    """Webhook deliveries: retries, timeouts, auto-disabling and which targets are allowed."""

    model_config = SettingsConfigDict(env_prefix="VTP_", extra="ignore")

    webhook_retry_schedule_seconds: list[float] = Field(
        [0, 10, 60, 300, 900, 2400],
        description="Delay before each try; the first goes out on arrival (keep it 0); 6 tries over about an hour.",
    )
    webhook_retry_jitter: float = Field(0.2, ge=0, le=1, description="Each delay is scaled by 1 ± this fraction.")
    webhook_timeout_seconds: float = Field(10.0, gt=0, description="Time limit of one delivery attempt.")
    webhook_disable_after_failures: int = Field(
        50, ge=1, description="Consecutive failed attempts after which a subscription is disabled."
    )
    webhook_allowed_cidrs: list[str] = Field(
        [], description="Private/loopback/link-local ranges targets may use anyway (e.g. `127.0.0.0/8` locally)."
    )
    webhook_secret_key: str = Field(
        "", description="Key encrypting signing secrets at rest (urlsafe base64, 32 bytes); empty: derived, dev only."
    )
    webhook_concurrency: int = Field(64, ge=1, description="Deliveries in flight per replica.")
    webhook_connections_per_target: int = Field(
        8, ge=1, description="Connections one replica opens to one receiver (scheme, host and port) at most."
    )
    webhook_poll_seconds: float = Field(
        0.5, gt=0, description="Shortest pause between looks for due deliveries (new ones wake the dispatcher at once)."
    )
    webhook_idle_poll_seconds: float = Field(
        30.0, gt=0, description="Longest sleep: otherwise the dispatcher sleeps until the next retry falls due."
    )

    @field_validator("webhook_retry_schedule_seconds")
    @classmethod
    def _schedule_usable(cls, value: list[float]) -> list[float]:
        if not value or any(delay < 0 for delay in value):
            raise ValueError("needs at least one try and no negative delay")
        return value

    @field_validator("webhook_allowed_cidrs")
    @classmethod
    def _cidrs_parse(cls, value: list[str]) -> list[str]:
        for cidr in value:
            ipaddress.ip_network(cidr, strict=False)  # a typo fails at start-up, not at the first delivery
        return value


class NotifierSettings(ServiceSettings, FeedSettings, WebhookSettings):
    service_name: str = "notifier"
    http_port: int = 8107
