"""Signatures any Standard Webhooks library verifies, and secrets that stay encrypted at rest."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidTag
from standardwebhooks import Webhook, WebhookVerificationError

from vtp_notifier.adapters.secret_box import MissingSecretKey, SecretBox
from vtp_notifier.domain.feed import FeedEvent
from vtp_notifier.domain.signing import SECRET_PREFIX, new_secret, secret_key, webhook_headers
from vtp_notifier.domain.webhooks import event_body


def _event() -> FeedEvent:
    return FeedEvent(
        seq=1,
        event_id=str(uuid.uuid4()),
        topic="epoch.progress.v1",
        project_id=uuid.uuid4(),
        subject="job-1",
        job_id=uuid.uuid4(),
        time=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        data={"epoch": 3, "note": "ünïcode ✓"},
    )


def test_signed_delivery_verifies_with_standardwebhooks():
    secret, event = new_secret(), _event()
    body = event_body(event)
    headers = webhook_headers(secret_key(secret), event.event_id, int(time.time()), body)
    payload = Webhook(secret).verify(body.encode(), headers)
    assert payload["id"] == event.event_id and payload["type"] == "epoch.progress.v1"
    assert payload["timestamp"] == "2026-01-02T03:04:05+00:00" and payload["data"]["note"] == "ünïcode ✓"
    assert payload["project_id"] == str(event.project_id) and payload["subject"] == "job-1"
    assert headers["webhook-id"] == event.event_id and headers["content-type"] == "application/json"


@pytest.mark.parametrize("tamper", ["body", "secret", "timestamp"])
def test_tampering_fails_verification(tamper: str):
    secret, event = new_secret(), _event()
    body = event_body(event)
    headers = webhook_headers(secret_key(secret), event.event_id, int(time.time()), body)
    if tamper == "body":
        body = body.replace('"epoch":3', '"epoch":4')
    elif tamper == "secret":
        secret = new_secret()
    else:
        headers["webhook-timestamp"] = str(int(time.time()) - 1)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.encode(), headers)


def test_secrets_are_fresh_and_well_formed():
    one, two = new_secret(), new_secret()
    assert one != two and one.startswith(SECRET_PREFIX)
    assert 24 <= len(base64.b64decode(one.removeprefix(SECRET_PREFIX))) <= 32


def test_secret_box_round_trip_is_bound_to_the_subscription():
    box, sub, secret = SecretBox(b"k" * 32), uuid.uuid4(), new_secret()
    blob = box.encrypt(sub, secret)
    assert secret.encode() not in blob and secret_key(secret) not in blob
    assert box.decrypt(sub, blob) == secret
    assert box.encrypt(sub, secret) != blob  # a fresh nonce each time
    with pytest.raises(InvalidTag):
        box.decrypt(uuid.uuid4(), blob)  # swapped onto another row
    with pytest.raises(InvalidTag):
        SecretBox(b"x" * 32).decrypt(sub, blob)


def test_secret_box_keys_from_settings():
    key = base64.urlsafe_b64encode(b"z" * 32).decode()
    sub = uuid.uuid4()
    assert SecretBox(b"z" * 32).decrypt(sub, SecretBox.from_settings(key, None).encrypt(sub, "s")) == "s"
    dev_a = SecretBox.from_settings("", "postgresql+asyncpg://a/db", local=True)
    blob = dev_a.encrypt(sub, "s")
    again = SecretBox.from_settings("", "postgresql+asyncpg://a/db", local=True)
    assert again.decrypt(sub, blob) == "s"  # deterministic
    with pytest.raises(MissingSecretKey, match="VTP_WEBHOOK_SECRET_KEY is required"):
        SecretBox.from_settings("", "postgresql+asyncpg://a/db")  # outside the local stack: no derived key
    with pytest.raises(ValueError):
        SecretBox.from_settings(base64.urlsafe_b64encode(b"short").decode(), None)
    with pytest.raises(ValueError):
        SecretBox.from_settings("not base64 !!", None)


def test_the_notifier_process_refuses_to_start_without_a_key_outside_the_local_stack():
    env = {k: v for k, v in os.environ.items() if not k.startswith("VTP_")}
    env |= {
        "VTP_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none",  # never reached: it stops first
        "VTP_REDIS_URL": "redis://127.0.0.1:1/0",
        "VTP_HTTP_PORT": "1",
    }
    notifier = Path(sys.executable).parent / "vtp-notifier"
    done = subprocess.run([str(notifier)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "VTP_WEBHOOK_SECRET_KEY is required outside the local stack" in done.stdout + done.stderr
