"""Services never import each other; contracts import nothing but pydantic."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _imported_roots(package_dir: Path) -> set[str]:
    roots: set[str] = set()
    for path in package_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                roots |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                roots.add(node.module.split(".")[0])
    return roots


def test_contracts_import_only_pydantic_and_stdlib():
    roots = _imported_roots(ROOT / "contracts" / "src" / "vtp_contracts")
    foreign = {r for r in roots if r not in sys.stdlib_module_names and r not in {"pydantic", "vtp_contracts"}}
    assert not foreign, f"contracts import {sorted(foreign)}"


def test_no_service_imports_another_service():
    services = {p.name: p for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists()}
    packages = {name: "vtp_" + name.replace("-", "_") for name in services}
    for name, path in services.items():
        others = {pkg for other, pkg in packages.items() if other != name}
        leaked = _imported_roots(path) & others
        assert not leaked, f"services/{name} imports {sorted(leaked)}"


def test_import_linter_contracts_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    result = subprocess.run([lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
