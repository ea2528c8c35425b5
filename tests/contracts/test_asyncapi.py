"""The committed AsyncAPI document covers every topic and matches the catalog."""

from __future__ import annotations

import json
from pathlib import Path

from vtp_contracts import CATALOG
from vtp_runtime.messaging.catalog_docs import asyncapi_document, dump

DOC = Path(__file__).resolve().parents[2] / "docs" / "asyncapi.json"


def test_committed_asyncapi_is_current():
    assert DOC.read_text() == dump(asyncapi_document()), "run `make contracts`"


def test_asyncapi_covers_every_topic_with_its_payload():
    doc = json.loads(DOC.read_text())
    assert doc["asyncapi"].startswith("3.")
    assert set(doc["channels"]) == {s.topic for s in CATALOG}
    schemas = doc["components"]["schemas"]
    for spec in CATALOG:
        assert spec.data_model.__name__ in schemas, spec.topic
        assert spec.ce_type in doc["channels"][spec.topic]["description"]
