"""A dataset upload in flight while a fault lands, and the check that it is stored whole or not at all."""

from __future__ import annotations

import io
import threading
import uuid
from typing import Any

import httpx

from ..integration.datasets.conftest import upload
from .journey import Journey, eventually


class _Tracked(io.BytesIO):
    """A request body that tells when half of it has been read (sent)."""

    def __init__(self, data: bytes, half_sent: threading.Event) -> None:
        super().__init__(data)
        self._half, self._event = len(data) // 2, half_sent

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        if self.tell() >= self._half:
            self._event.set()
        return chunk


class InFlightUpload:
    """A dataset upload on a thread, so a fault can land while it is under way."""

    def __init__(self, journey: Journey, data: bytes) -> None:
        self.journey, self.data = journey, data
        self.name = f"upload-{uuid.uuid4().hex[:8]}"
        self.half_sent = threading.Event()
        self.outcome: httpx.Response | Exception | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> InFlightUpload:
        self._thread.start()
        assert self.half_sent.wait(60), "the upload never got under way"
        return self

    def _run(self) -> None:
        files = {"file": ("dataset.zip", _Tracked(self.data, self.half_sent), "application/zip")}
        try:
            with httpx.Client(base_url=str(self.journey.api.base_url), headers=self.journey.project.headers) as api:
                self.outcome = api.post("/api/v1/datasets", data={"name": self.name}, files=files, timeout=180)
        except Exception as exc:  # the fault may cut the connection: that is a valid outcome
            self.outcome = exc

    def settle(self, reference: dict[str, Any]) -> str:
        """After recovery: the upload is stored whole or not at all; a retry of a lost one succeeds.

        Returns what happened to the in-flight upload (for the summary).
        """
        self._thread.join(200)
        assert not self._thread.is_alive(), "the upload never answered"
        outcome = self.outcome
        answered = outcome.status_code if isinstance(outcome, httpx.Response) else type(outcome).__name__
        if isinstance(outcome, httpx.Response) and outcome.status_code not in (201, 502, 503):
            raise AssertionError(f"upload answered {outcome.status_code}: {outcome.text[:500]}")
        found = self._stored()
        if not found:
            assert not (isinstance(outcome, httpx.Response) and outcome.status_code == 201), "a 201 must stay stored"
            retried = upload(self.journey.api, self.data, self.name)
            assert retried.status_code == 201, retried.text
            found = self._stored()
        assert len(found) == 1, f"one dataset per upload, found {len(found)}"
        stored = found[0]
        whole = (stored["content_hash"], stored["image_count"]) == (reference["content_hash"], reference["image_count"])
        assert whole, f"half-stored upload: {stored} vs {reference}"
        return f"upload {answered}, stored whole"

    def _stored(self) -> list[dict[str, Any]]:
        def listing() -> list[dict[str, Any]] | None:
            response = self.journey.api.get("/api/v1/datasets", params={"search": self.name})
            if response.status_code != 200:
                return None
            items: list[dict[str, Any]] = [d for d in response.json()["items"] if d["name"] == self.name]
            return items or [{}]

        items: list[dict[str, Any]] = eventually(listing, "the datasets listing", 60)
        return [i for i in items if i]
