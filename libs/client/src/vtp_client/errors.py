"""What the client raises: `ApiError` for every problem+json answer, `ConnectionFailed` when no answer came."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["ApiError", "ConnectionFailed", "FeedError", "Problem", "VtpError"]


class Problem(BaseModel):
    """One entry of a problem document's `errors`: a field or file problem.

    Validation problems carry `pointer` (a JSON pointer into the request), dataset problems also
    `file` and `line`; the live feed names the field in `field`. Other keys are kept.
    """

    model_config = ConfigDict(extra="allow")
    code: str = ""
    message: str = ""
    pointer: str | None = None
    file: str | None = None
    line: int | None = None
    field: str | None = None

    @property
    def where(self) -> str:
        """The file, line and pointer joined, e.g. `annotations.json#/images/0`."""
        place = (self.file or "") + (f":{self.line}" if self.line is not None else "")
        return place + (self.pointer or self.field or "")


class VtpError(Exception):
    """Base of every error this library raises."""


class ApiError(VtpError):
    """A non-2xx answer of the platform (RFC 9457 problem+json), or a problem sent on the live feed."""

    def __init__(
        self,
        status: int,
        code: str,
        title: str,
        detail: str | None = None,
        problems: list[Problem] | None = None,
        *,
        method: str = "",
        url: str = "",
        retry_after: float | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.problems = problems or []
        self.method, self.url, self.retry_after = method, url, retry_after
        self.body = body or {}
        super().__init__(str(self))

    @classmethod
    def from_body(cls, status: int, body: Any, **where: Any) -> ApiError:
        """Read a problem document; an answer that is not one still becomes an ApiError with its status."""
        if not isinstance(body, dict) or ("code" not in body and "title" not in body):
            text = body if isinstance(body, str) else json.dumps(body)[:300] if body is not None else ""
            return cls(status, f"http_{status}", f"HTTP {status}", text[:300] or None, **where)
        errors: list[Any] = body["errors"] if isinstance(body.get("errors"), list) else []
        problems = [Problem.model_validate(e) if isinstance(e, dict) else Problem(message=str(e)) for e in errors]
        return cls(
            int(body.get("status") or status),
            str(body.get("code") or f"http_{status}"),
            str(body.get("title") or f"HTTP {status}"),
            body.get("detail"),
            problems,
            body=body,
            **where,
        )

    def __str__(self) -> str:
        head = f"{self.status} {self.code}: {self.title}"
        if self.detail:
            head += f" ({self.detail})"
        if self.method:
            head += f" [{self.method} {self.url}]"
        lines = [head]
        lines += [f"  - {p.where or '-'}: {p.code}: {p.message}" for p in self.problems]
        return "\n".join(lines)


class ConnectionFailed(VtpError):
    """The platform could not be reached (or stopped answering) after every try."""

    def __init__(self, url: str, reason: str, tries: int) -> None:
        self.url, self.reason, self.tries = url, reason, tries
        super().__init__(
            f"cannot reach {url}: {reason} (after {tries} {'try' if tries == 1 else 'tries'}); "
            "is the platform running (`make up`) and VTP_URL right?"
        )


class FeedError(ApiError):
    """The live feed refused the connection, closed it for good, or answered a subscription with a problem.

    `status` is the handshake's HTTP status (403), 401 for a token revoked while connected (close
    code 4401), or 400 for a `problem` message (`invalid_subscription`, `unknown_since`).
    """

    def __init__(
        self, status: int, code: str, detail: str, problems: list[Problem] | None = None, close_code: int | None = None
    ) -> None:
        self.close_code = close_code
        super().__init__(status, code, "Live feed", detail, problems)
