"""Settings of the notifier service (environment, prefix ``VTP_``)."""

from __future__ import annotations

from pydantic import Field

from vtp_runtime.settings import ServiceSettings


class FeedSettings(ServiceSettings):
    """The live feed: history kept for resuming, and what one WebSocket client may hold."""

    feed_retention_hours: float = Field(168.0, gt=0, description="How long events stay replayable with `since`.")
    feed_history_limit: int = Field(5000, ge=1, description="Most events one subscribe replays before going live.")
    ws_send_buffer: int = Field(1000, ge=1, description="Messages queued for one client before it is dropped.")
    ws_ticket_seconds: float = Field(30.0, gt=0, description="Lifetime of a single-use browser ticket.")
    ws_ping_seconds: float = Field(20.0, gt=0, description="Interval of WebSocket protocol pings (keepalive).")
    feed_channel: str = Field("vtp:notifier:feed", description="Redis pub/sub channel every replica listens on.")


class WebhookSettings(ServiceSettings):
    """Webhook deliveries: retries, timeouts, auto-disabling and which targets are allowed."""

    webhook_retry_schedule_seconds: list[float] = Field(
        [0, 10, 60, 300, 900, 2400],
        description="Delay before each try (the first is normally 0); 6 tries over about an hour.",
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
        "", description="Key that encrypts signing secrets at rest (urlsafe base64, 32 bytes); empty: derived, dev only."
    )
    webhook_concurrency: int = Field(64, ge=1, description="Deliveries in flight per replica.")
    webhook_poll_seconds: float = Field(0.5, gt=0, description="How often due retries are looked for.")


class NotifierSettings(FeedSettings, WebhookSettings):
    service_name: str = "notifier"
    http_port: int = 8107
