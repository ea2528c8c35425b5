"""One HTTP connection pool to the gateway: auth, problem+json errors, retries with backoff, streaming.

What is retried (up to `RetryPolicy.max_tries` tries in all, exponential backoff with jitter):

- a connection that could not be made (refused, DNS, connect timeout): every method, since
  nothing reached the platform;
- `429` (rate limited, honouring `Retry-After`): every method, since the request was refused
  before it did anything;
- `502`/`503`/`504` and a connection lost after the request went out (read errors, read
  timeouts): only idempotent requests. GET, HEAD, PUT and DELETE are; a POST or PATCH only where
  its method says so (`idempotent=True`): snapshot creation and export creation (the platform
  answers the existing one for the same content), activate/deactivate, making an export the
  default, predictions, and subscription PATCHes (they set values, never add to them).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, Any, TypeVar

import httpx

from vtp_client.errors import ApiError, ConnectionFailed

__all__ = ["DEFAULT_URL", "Progress", "ProgressReader", "RetryPolicy", "Source", "Transport", "file_part"]

DEFAULT_URL = "http://127.0.0.1:8080"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
RETRY_STATUSES_ANY = frozenset({429})
RETRY_STATUSES_IDEMPOTENT = frozenset({502, 503, 504})
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout)  # the request never reached the platform
USER_AGENT = "vtp-client/0.1"
CHUNK = 1 << 16

Progress = Callable[[int, int | None], None]
"""Called with (bytes done, total bytes or None) as an upload or download moves on."""
Source = Path | str | bytes
"""A zip (or any file) to upload: on disk (a path) or in memory (bytes)."""
T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to try again.

    The wait before try n+1 is `base_delay * 2**(n-1)`, capped at `max_delay`, multiplied by a
    random factor in [1 - jitter, 1] so that clients failing together do not come back together.
    A `Retry-After` header replaces the computed wait; one longer than `max_retry_after` (a quota
    that resets tomorrow) is not waited for: the error is raised at once.
    """

    max_tries: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.5
    max_retry_after: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def delay(self, failed_tries: int) -> float:
        capped = min(self.max_delay, self.base_delay * 2.0 ** (failed_tries - 1))
        return capped * (1 - self.jitter * self.rng.random())


class ProgressReader(io.RawIOBase):
    """A readable file that reports the bytes read, so an upload can draw a progress bar.

    httpx reads multipart file parts in chunks while sending, and rewinds (seek 0) before a
    retry; the count follows both. `fileno` and `seek` let httpx size the part without reading it.
    """

    def __init__(self, inner: IO[bytes], total: int | None, progress: Progress | None) -> None:
        super().__init__()
        self.inner, self.total, self.progress, self.done = inner, total, progress, 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self.inner.read(size)
        self.done += len(chunk)
        if self.progress is not None and chunk:
            self.progress(self.done, self.total)
        return chunk

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        position = self.inner.seek(offset, whence)
        if whence == os.SEEK_SET:
            self.done = position
        return position

    def tell(self) -> int:
        return self.inner.tell()

    def fileno(self) -> int:
        return self.inner.fileno()


def file_part(source: Source, progress: Progress | None) -> tuple[str, ProgressReader]:
    """A file name and a reader that reports progress (rewound by httpx before a retry); close it after."""
    if isinstance(source, bytes):
        return "upload.zip", ProgressReader(io.BytesIO(source), len(source), progress)
    path = Path(source)
    return path.name, ProgressReader(path.open("rb"), path.stat().st_size, progress)


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Query parameters without the ones left at None; booleans as the API spells them."""
    if params is None:
        return None
    out: dict[str, Any] = {}
    for key, value in params.items():
        if value is None:
            continue
        out[key] = ("true" if value else "false") if isinstance(value, bool) else value
    return out


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        with contextlib.suppress(TypeError, ValueError):
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    return None


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, NOT_SENT):
        text += " (the request went out; it may have been applied)"
    return f"{type(exc).__name__}: {text}"


class Transport:
    """The authenticated connection every resource group sends through."""

    def __init__(
        self,
        url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        http_transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        headers = {"User-Agent": USER_AGENT}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout, transport=http_transport)

    def close(self) -> None:
        self.http.close()

    # -- requests ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        """Send with retries; a non-2xx answer raises `ApiError`, no answer `ConnectionFailed`."""
        method = method.upper()
        safe = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        extra: dict[str, Any] = {"timeout": timeout} if timeout is not None else {}

        def once() -> httpx.Response:
            response = self.http.request(method, path, params=_clean(params), **kwargs, **extra)
            if response.status_code >= 400:
                raise self.error(response)
            return response

        return self.with_retries(once, safe)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        return None if response.status_code == 204 or not response.content else response.json()

    def download(
        self,
        path: str,
        dest: Path,
        *,
        params: Mapping[str, Any] | None = None,
        progress: Progress | None = None,
        timeout: float | None = 300.0,
    ) -> tuple[Path, str]:
        """Stream a GET into `dest` (a file, or a folder for the server's file name); returns (path, sha256).

        Written to a temporary name and renamed when complete, so `dest` never holds half a file;
        when the server sends `X-Content-SHA256`, bytes that do not match it are refused.
        """

        def once() -> tuple[Path, str]:
            with self.http.stream("GET", path, params=_clean(params), timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self.error(response)
                target = dest / _file_name(response, path) if dest.is_dir() else dest
                total = int(response.headers["content-length"]) if "content-length" in response.headers else None
                partial = target.with_name(target.name + ".part")
                digest, done = hashlib.sha256(), 0
                try:
                    with partial.open("wb") as out:
                        for chunk in response.iter_bytes(CHUNK):
                            out.write(chunk)
                            digest.update(chunk)
                            done += len(chunk)
                            if progress is not None:
                                progress(done, total)
                    expected = response.headers.get("x-content-sha256")
                    if expected and expected != digest.hexdigest():
                        raise ApiError(
                            response.status_code,
                            "checksum_mismatch",
                            "Downloaded bytes do not match X-Content-SHA256",
                            f"expected {expected}, got {digest.hexdigest()}",
                            method="GET",
                            url=str(response.url),
                        )
                    partial.replace(target)
                finally:
                    partial.unlink(missing_ok=True)
                return target, digest.hexdigest()

        return self.with_retries(once, True)

    # -- retries and errors ----------------------------------------------------------------------

    def with_retries(self, once: Callable[[], T], idempotent: bool) -> T:
        tries = 0
        while True:
            tries += 1
            try:
                return once()
            except httpx.TransportError as exc:
                sent = not isinstance(exc, NOT_SENT)
                if (sent and not idempotent) or tries >= self.retry.max_tries:
                    raise ConnectionFailed(self.url, _reason(exc), tries) from exc
                wait = self.retry.delay(tries)
            except ApiError as exc:
                retryable = exc.status in RETRY_STATUSES_ANY or (idempotent and exc.status in RETRY_STATUSES_IDEMPOTENT)
                too_long = exc.retry_after is not None and exc.retry_after > self.retry.max_retry_after
                if not retryable or too_long or tries >= self.retry.max_tries:
                    raise
                wait = self.retry.delay(tries) if exc.retry_after is None else exc.retry_after
            self._sleep(wait)

    def error(self, response: httpx.Response) -> ApiError:
        """The ApiError of a non-2xx answer (problem+json, or whatever else a proxy sent)."""
        body: Any
        try:
            body = response.json()
        except ValueError:
            body = response.text[:300]
        return ApiError.from_body(
            response.status_code,
            body,
            method=response.request.method,
            url=str(response.request.url),
            retry_after=_retry_after(response),
        )

    # -- the live feed -------------------------------------------------------------------------

    @property
    def ws_url(self) -> str:
        if self.url.startswith("https://"):
            return "wss://" + self.url.removeprefix("https://")
        return "ws://" + self.url.removeprefix("http://")


def _file_name(response: httpx.Response, path: str) -> str:
    disposition = response.headers.get("content-disposition", "")
    if 'filename="' in disposition:
        name = disposition.split('filename="', 1)[1].split('"', 1)[0]
        name = os.path.basename(str(name))  # never a path the server chose
        if name and name not in (".", ".."):
            return name
    return path.rstrip("/").rsplit("/", 1)[-1] or "download"
