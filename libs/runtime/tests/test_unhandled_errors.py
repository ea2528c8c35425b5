"""A bug is a problem+json 500 on a connection that stays usable; shared field rules answer 422.

Served by a real uvicorn and spoken to over one raw socket: the keep-alive behaviour under test
is the server's, which an in-process transport would not show.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Annotated

import h11
import pytest
import uvicorn
from fakes import GOOD_TOKEN, FakeVerifier
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from vtp_runtime.http.app import AppParts, build_app
from vtp_runtime.http.fields import MAX_OFFSET, NulFreeStr, Offset

PROBLEM = "application/problem+json"


class Note(BaseModel):
    text: NulFreeStr = Field(min_length=1, max_length=50)
    tag: NulFreeStr | None = None


def _router() -> APIRouter:
    router = APIRouter()

    @router.post("/api/v1/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    @router.post("/api/v1/notes")
    async def note(body: Note) -> Note:
        return body

    @router.get("/api/v1/notes")
    async def notes(
        offset: Offset = 0, search: Annotated[NulFreeStr | None, Query(max_length=20)] = None
    ) -> dict[str, object]:
        return {"offset": offset, "search": search}

    @router.get("/api/v1/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"partial"
            raise RuntimeError("mid-stream")

        return StreamingResponse(chunks())

    return router


@pytest.fixture()
async def server() -> AsyncIterator[tuple[str, int]]:
    app = build_app(AppParts("notes", "1.0", FakeVerifier(), routers=[_router()]))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    uv = uvicorn.Server(config)
    task = asyncio.create_task(uv.serve(sockets=[sock]))
    for _ in range(1000):  # up to 10 s on a loaded machine
        if uv.started:
            break
        await asyncio.sleep(0.01)
    assert uv.started, "uvicorn did not start"
    try:
        yield sock.getsockname()
    finally:
        uv.should_exit = True
        await task


class RawClient:
    """HTTP/1.1 over one TCP connection: a closed connection shows instead of being hidden by a pool."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.conn = h11.Connection(h11.CLIENT)

    async def request(self, method: str, target: str, body: bytes = b"") -> tuple[int, dict[str, str], bytes]:
        if self.conn.our_state is h11.DONE:
            self.conn.start_next_cycle()
        headers = [("host", "test"), ("authorization", f"Bearer {GOOD_TOKEN}"), ("content-length", str(len(body)))]
        if body:
            headers.append(("content-type", "application/json"))
        for event in (h11.Request(method=method, target=target, headers=headers), h11.Data(data=body)):
            self.writer.write(self.conn.send(event) or b"")
        self.writer.write(self.conn.send(h11.EndOfMessage()) or b"")
        await self.writer.drain()
        status, response_headers, chunks = 0, {}, []
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await asyncio.wait_for(self.reader.read(65536), 10))
            elif isinstance(event, h11.Response):
                status = event.status_code
                response_headers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h11.Data):
                chunks.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                return status, response_headers, b"".join(chunks)


@pytest.fixture()
async def raw(server: tuple[str, int]) -> AsyncIterator[RawClient]:
    reader, writer = await asyncio.open_connection(*server)
    yield RawClient(reader, writer)
    writer.close()


async def test_a_bug_is_a_problem_500_and_the_next_post_on_the_connection_works(raw: RawClient):
    for _ in range(3):
        status, headers, body = await raw.request("POST", "/api/v1/boom", b"{}")
        assert status == 500 and headers["content-type"] == PROBLEM
        problem = json.loads(body)
        assert problem["code"] == "internal_error" and "secret" not in body.decode()
        assert headers.get("connection") != "close"
        status, _, body = await raw.request("POST", "/api/v1/notes", b'{"text": "still here"}')
        assert status == 200 and json.loads(body)["text"] == "still here"


async def test_a_stream_that_fails_midway_closes_the_connection(raw: RawClient):
    # Once part of a body is out, only a closed connection tells the client it was cut short.
    with pytest.raises(h11.RemoteProtocolError, match="incomplete chunked read"):
        await raw.request("GET", "/api/v1/stream")


@pytest.mark.parametrize(
    "body,pointers",
    [
        ({"text": "a\x00b"}, {"#/body/text"}),
        ({"text": "ok", "tag": "\x00"}, {"#/body/tag"}),
        ({"text": "\x00", "tag": "x\x00"}, {"#/body/text", "#/body/tag"}),
    ],
)
async def test_nul_in_text_is_422_nul_character(raw: RawClient, body: dict[str, str], pointers: set[str]):
    status, headers, raw_body = await raw.request("POST", "/api/v1/notes", json.dumps(body).encode())
    assert status == 422 and headers["content-type"] == PROBLEM
    errors = json.loads(raw_body)["errors"]
    assert {e["pointer"] for e in errors} == pointers
    assert {e["code"] for e in errors} == {"nul_character"}


@pytest.mark.parametrize("query", [f"offset={MAX_OFFSET + 1}", "offset=9223372036854775808", "search=a%00b"])
async def test_out_of_range_offset_and_nul_search_are_422(raw: RawClient, query: str):
    status, headers, body = await raw.request("GET", f"/api/v1/notes?{query}")
    assert status == 422 and headers["content-type"] == PROBLEM
    assert json.loads(body)["code"] == "validation_failed"


async def test_largest_offset_is_accepted(raw: RawClient):
    status, _, body = await raw.request("GET", f"/api/v1/notes?offset={MAX_OFFSET}")
    assert status == 200 and json.loads(body)["offset"] == MAX_OFFSET


def test_nul_rule_is_in_the_openapi_document():
    app = build_app(AppParts("notes", "1.0", FakeVerifier(), routers=[_router()]))
    schema = app.openapi()
    text = schema["components"]["schemas"]["Note"]["properties"]["text"]
    assert text["pattern"] == "^[^\\u0000]*$" and text["maxLength"] == 50
    offset = next(p for p in schema["paths"]["/api/v1/notes"]["get"]["parameters"] if p["name"] == "offset")
    assert offset["schema"]["maximum"] == MAX_OFFSET
