"""Generates the committed contract artefacts from the contracts package.

* ``contracts/schemas/<topic>.json``: one JSON Schema per topic version.
* ``docs/asyncapi.json``: an AsyncAPI 3.0 document of every topic, built by
  faststream from a broker that declares one publisher per topic.

Run ``make contracts`` (``python -m vtp_runtime.messaging.catalog_docs``); the
tests fail while the committed files differ from what this produces.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from faststream.kafka import KafkaBroker
from faststream.specification import AsyncAPI

from vtp_contracts import CATALOG, TopicSpec
from vtp_contracts import envelope as ce

SCHEMA_ID_BASE = "https://vtp.dev/schemas/"


def topic_schema(spec: TopicSpec) -> dict[str, Any]:
    """The JSON Schema of one topic's payload, with its routing facts attached."""
    schema = spec.data_model.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_ID_BASE}{spec.topic}.json",
        **schema,
        "x-topic": spec.topic,
        "x-cloudevents-type": spec.ce_type,
        "x-partition-key": spec.key_field,
    }


def asyncapi_document(version: str = "1.0.0") -> dict[str, Any]:
    """AsyncAPI 3.0 for the whole catalog (payloads, keys, CloudEvents headers)."""
    broker = KafkaBroker("kafka:9092", description="Apache Kafka (or any Kafka-API broker)")
    for spec in CATALOG:
        publisher = broker.publisher(
            spec.topic,
            title=spec.topic,
            description=(
                f"{spec.description} Key: `{spec.key_field}`. CloudEvents type `{spec.ce_type}`. "
                f"Produced by {', '.join(spec.producers)}; consumed by {', '.join(spec.consumers)}."
            ),
            schema=spec.data_model,
        )
        publisher(_noop)  # faststream documents a publisher once it decorates a handler
    doc = AsyncAPI(
        broker,
        title="Vision training platform events",
        version=version,
        description=(
            "CloudEvents 1.0 in Kafka binary content mode: attributes in headers "
            f"({', '.join((ce.HEADER_ID, ce.HEADER_SOURCE, ce.HEADER_TYPE, ce.HEADER_SPECVERSION, ce.HEADER_TIME))}, "
            f"{ce.HEADER_SUBJECT}), W3C `traceparent`, JSON payload, key = aggregate id. See docs/events.md."
        ),
        schema_version="3.0.0",
    )
    result: dict[str, Any] = json.loads(doc.to_specification().to_json())
    return result


async def _noop(_: Any) -> None:  # pragma: no cover - never called, only documented
    return None


def write_all(root: Path) -> list[Path]:
    """Regenerate every artefact under the repository `root`; returns the files written."""
    written = []
    schema_dir = root / "contracts" / "schemas"
    schema_dir.mkdir(parents=True, exist_ok=True)
    for spec in CATALOG:
        path = schema_dir / f"{spec.topic}.json"
        path.write_text(dump(topic_schema(spec)))
        written.append(path)
    path = root / "docs" / "asyncapi.json"
    path.write_text(dump(asyncapi_document()))
    written.append(path)
    return written


def dump(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description="Regenerate JSON Schemas and the AsyncAPI document.")
    parser.add_argument("--root", type=Path, default=Path("."), help="repository root")
    for path in write_all(parser.parse_args().root):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
