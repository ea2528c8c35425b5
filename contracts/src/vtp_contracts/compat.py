"""Backward-compatibility check between two JSON Schemas of one topic version.

A `.v1` schema may only grow: new optional fields, wider enums. Removing,
renaming or retyping a field, narrowing an enum, or adding a required field
breaks consumers or producers that were built against the old schema, and
needs a new topic version instead.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def _resolve(node: Schema, root: Schema) -> Schema:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return _resolve(root["$defs"][ref.removeprefix("#/$defs/")], root)
    return node


def _types(node: Schema, root: Schema) -> frozenset[str]:
    """The set of JSON types a schema node admits (unions flattened)."""
    node = _resolve(node, root)
    variants = node.get("anyOf") or node.get("oneOf")
    if variants:
        out: set[str] = set()
        for variant in variants:
            out |= _types(variant, root)
        return frozenset(out)
    if "const" in node:
        return frozenset({type(node["const"]).__name__})
    kind = node.get("type")
    if isinstance(kind, list):
        return frozenset(kind)
    if isinstance(kind, str):
        return frozenset({kind})
    if "enum" in node:
        return frozenset({type(v).__name__ for v in node["enum"]})
    return frozenset({"any"})


def _enum(node: Schema, root: Schema) -> set[Any] | None:
    node = _resolve(node, root)
    if "enum" in node:
        return set(node["enum"])
    if "const" in node:
        return {node["const"]}
    variants = node.get("anyOf") or node.get("oneOf")
    if variants:
        values: set[Any] = set()
        for variant in variants:
            sub = _enum(variant, root)
            if sub is None:
                return None
            values |= sub
        return values
    return None


def _object_branch(node: Schema, root: Schema) -> Schema | None:
    node = _resolve(node, root)
    if node.get("type") == "object" and "properties" in node:
        return node
    for variant in node.get("anyOf") or node.get("oneOf") or []:
        branch = _object_branch(variant, root)
        if branch is not None:
            return branch
    return None


def _compare(old: Schema, new: Schema, old_root: Schema, new_root: Schema, path: str) -> list[str]:
    problems: list[str] = []
    old_types, new_types = _types(old, old_root), _types(new, new_root)
    if "any" not in new_types and not old_types <= new_types:
        problems.append(f"{path}: retyped from {sorted(old_types)} to {sorted(new_types)}")
        return problems
    old_enum, new_enum = _enum(old, old_root), _enum(new, new_root)
    if old_enum is not None and new_enum is not None and not old_enum <= new_enum:
        problems.append(f"{path}: enum values removed: {sorted(map(str, old_enum - new_enum))}")
    old_obj, new_obj = _object_branch(old, old_root), _object_branch(new, new_root)
    if old_obj is not None and new_obj is not None:
        problems += _compare_objects(old_obj, new_obj, old_root, new_root, path)
    old_items = _resolve(old, old_root).get("items")
    new_items = _resolve(new, new_root).get("items")
    if isinstance(old_items, dict) and isinstance(new_items, dict):
        problems += _compare(old_items, new_items, old_root, new_root, f"{path}[]")
    return problems


def _compare_objects(old: Schema, new: Schema, old_root: Schema, new_root: Schema, path: str) -> list[str]:
    problems: list[str] = []
    old_props: Schema = old.get("properties", {})
    new_props: Schema = new.get("properties", {})
    for name, old_prop in old_props.items():
        if name not in new_props:
            problems.append(f"{path}/{name}: field removed or renamed")
            continue
        problems += _compare(old_prop, new_props[name], old_root, new_root, f"{path}/{name}")
    added_required = set(new.get("required", [])) - set(old.get("required", []))
    for name in sorted(added_required):
        problems.append(f"{path}/{name}: new required field")
    return problems


def incompatibilities(old: Schema, new: Schema) -> list[str]:
    """Every way `new` breaks readers or writers of `old`; empty when compatible."""
    return _compare(old, new, old, new, "")
