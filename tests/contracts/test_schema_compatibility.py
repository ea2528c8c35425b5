"""Committed v1 schemas may only grow; an incompatible change needs a new topic version."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from vtp_contracts import CATALOG
from vtp_contracts.compat import incompatibilities
from vtp_runtime.messaging.catalog_docs import dump, topic_schema

ROOT = Path(__file__).resolve().parents[2]
SCHEMA_DIR = ROOT / "contracts" / "schemas"


def _committed(topic: str) -> dict[str, Any]:
    return json.loads((SCHEMA_DIR / f"{topic}.json").read_text())


def _history(path: Path) -> list[dict[str, Any]]:
    """Every version of `path` ever committed (empty outside a git checkout)."""
    rel = path.relative_to(ROOT).as_posix()
    try:
        commits = subprocess.run(
            ["git", "log", "--format=%H", "--", rel], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        return [
            json.loads(
                subprocess.run(
                    ["git", "show", f"{c}:{rel}"], cwd=ROOT, capture_output=True, text=True, check=True
                ).stdout
            )
            for c in commits
        ]
    except (OSError, subprocess.CalledProcessError):
        return []


@pytest.mark.parametrize("spec", CATALOG, ids=lambda s: s.topic)
def test_model_is_compatible_with_every_committed_version(spec):
    generated = topic_schema(spec)
    path = SCHEMA_DIR / f"{spec.topic}.json"
    for old in [_committed(spec.topic), *_history(path)]:
        problems = incompatibilities(old, generated)
        assert not problems, (
            f"{spec.topic} changed incompatibly; publish {spec.name}.v{spec.version + 1} instead:\n"
            + ("\n".join(problems))
        )


@pytest.mark.parametrize("spec", CATALOG, ids=lambda s: s.topic)
def test_committed_schema_is_current(spec):
    assert (SCHEMA_DIR / f"{spec.topic}.json").read_text() == dump(topic_schema(spec)), "run `make contracts`"


def test_every_committed_schema_belongs_to_the_catalog():
    assert sorted(p.stem for p in SCHEMA_DIR.glob("*.json")) == sorted(s.topic for s in CATALOG)


# -- the checker itself, shown on deliberately broken copies of a committed schema ---------------


def _broken(mutate) -> list[str]:
    old = _committed("job.requested.v1")
    new = copy.deepcopy(old)
    mutate(new)
    return incompatibilities(old, new)


def test_removed_field_is_incompatible():
    problems = _broken(lambda s: s["properties"].pop("priority"))
    assert problems == ["/priority: field removed or renamed"]


def test_renamed_field_is_incompatible():
    def rename(s):
        s["properties"]["job_priority"] = s["properties"].pop("priority")

    assert "/priority: field removed or renamed" in _broken(rename)


def test_retyped_field_is_incompatible():
    def retype(s):
        s["properties"]["attempt"] = {"type": "string"}

    assert any(p.startswith("/attempt: retyped") for p in _broken(retype))


def test_new_required_field_is_incompatible():
    def require(s):
        s["properties"]["owner"] = {"type": "string"}
        s["required"].append("owner")

    assert _broken(require) == ["/owner: new required field"]


def test_nested_field_removed_is_incompatible():
    problems = _broken(lambda s: s["$defs"]["SplitOverride"]["properties"].pop("seed"))
    assert problems == ["/split/seed: field removed or renamed"]


def test_narrowed_enum_is_incompatible():
    def narrow(s):
        s["properties"]["task_type"]["enum"].remove("pose")

    assert any("enum values removed" in p for p in _broken(narrow))


def test_new_optional_field_and_wider_enum_are_compatible():
    def grow(s):
        s["properties"]["notes"] = {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}
        s["properties"]["task_type"]["enum"].append("obb")

    assert _broken(grow) == []
