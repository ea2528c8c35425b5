"""Request field types every service shares, so one rule has one definition.

PostgreSQL stores no NUL character in text or jsonb: a string holding one must be refused as
422 at the edge, not fail as 500 in the database. Offsets are bound so they fit its bigint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query
from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

NUL = "\x00"
NUL_CODE = "nul_character"
NUL_MESSAGE = "must not contain the NUL character (U+0000)"
NUL_FREE_PATTERN = r"^[^\u0000]*$"
MAX_OFFSET = 2**31 - 1  # far beyond any page anyone reads; fits every client's int32


def _refuse_nul(value: str) -> str:
    if NUL in value:
        raise PydanticCustomError(NUL_CODE, NUL_MESSAGE)
    return value


@dataclass(frozen=True)
class _NulFree:
    """Validates after the str schema and documents the rule as a `pattern` in the JSON Schema."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(_refuse_nul, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("pattern", NUL_FREE_PATTERN)
        return json_schema


# Text a client may send and the platform stores or searches. Add lengths with Field/Query;
# a field that already has a `pattern` excluding NUL needs no NulFreeStr.
NulFreeStr = Annotated[str, _NulFree()]

# The `offset` query parameter of every paginated route.
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip.")]


def nul_problems(fields: dict[str, str], pointer_prefix: str) -> list[dict[str, str]]:
    """Problem `errors` entries for hand-parsed fields (multipart forms) that hold a NUL."""
    return [
        {"pointer": pointer_prefix + name, "code": NUL_CODE, "message": NUL_MESSAGE}
        for name, value in fields.items()
        if NUL in value
    ]
