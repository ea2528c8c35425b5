"""vtp_trainers imports pydantic and the standard library only (never a framework or a service)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import vtp_trainers

PACKAGE = Path(vtp_trainers.__file__).parent


def test_imports_only_pydantic_and_stdlib() -> None:
    roots: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                roots |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots.add(node.module.split(".")[0])
    allowed = {"pydantic", "pydantic_core", "vtp_trainers"}
    foreign = {r for r in roots if r not in sys.stdlib_module_names and r not in allowed}
    assert not foreign, f"vtp_trainers imports {sorted(foreign)}"
